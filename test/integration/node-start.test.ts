import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registryFlags } from '../../src/main/config/commands.js';
import { parseFlags } from '../../src/main/config/flag.js';
import { ConfigError } from '../../src/main/errors.js';
import { createLogger } from '../../src/main/log/logger.js';
import { ShoalNode } from '../../src/main/node/node.js';
import { freePort } from '../harness/process.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}

// A part that cannot start (the registry port is taken) fails the node, and every part that had started
// before it (the metrics and admin listeners, the digest workers, the store) is stopped again: a
// supervisor that restarts shoal finds its ports free.
describe('ShoalNode.start rolls back what started when a later part fails', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await shortTempDir('shoal-node-start');
  });
  after(() => removeDir(dir));

  it('names the flag and frees the ports of the parts that had started', async () => {
    const [registry, metrics, admin] = await Promise.all([freePort(), freePort(), freePort()]);
    const taken = await listen(registry);
    const { values } = parseFlags(
      registryFlags,
      [
        '--store',
        'embedded',
        '--data-dir',
        join(dir, 'data'),
        '--registry-addr',
        `127.0.0.1:${registry}`,
        '--metrics-addr',
        `127.0.0.1:${metrics}`,
        '--admin-addr',
        `127.0.0.1:${admin}`,
      ],
      {},
    );
    try {
      await assert.rejects(ShoalNode.start(values, createLogger('silent')), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^--registry-addr: cannot listen/);
        return true;
      });
    } finally {
      taken.close();
    }
    // Every port a part had bound before the failure is free again.
    for (const port of [metrics, admin]) (await listen(port)).close();
    // And the node starts once the port is free.
    const node = await ShoalNode.start(values, createLogger('silent'));
    assert.equal(node.ports.registry, registry);
    await node.stop();
  });
});
