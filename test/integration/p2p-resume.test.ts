import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { bytesSentFrom, Child, freePort, waitFor } from '../harness/process.js';
import { importLayout, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NS = '127.0.0.1:5000';

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

// Real processes: nodes 1 and 2 both hold a 64 MiB layer; node 3 streams it to a slow client from one of
// them. That node is killed (SIGKILL) mid-body; node 3 must finish the same response from the other.
describe('a peer killed mid-body: the download continues from another peer', { timeout: 180_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  const nodes: ShoalProcess[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-resume');
    image = await multiLayerImage();
    for (const name of ['n0', 'n1']) {
      await importLayout(join(dir, name), image.dir, NS, 'app');
    }
    const routerPorts = await Promise.all([freePort(), freePort(), freePort()]);
    for (let i = 0; i < 3; i++) {
      const p2p = staticP2pArgs({
        dataDir: join(dir, `n${i}`),
        routerPort: routerPorts[i] as number,
        bootstrapPort: routerPorts[0] as number,
      });
      nodes.push(
        new ShoalProcess(['--store', 'embedded', ...p2p, '--log-level', i === 2 ? 'debug' : 'warn']),
      );
    }
    await Promise.all(nodes.map((node) => node.start()));
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await removeDir(dir);
  });

  it('delivers the whole body, byte for byte', async (t) => {
    const layer = image.image.layers.find((candidate) => candidate.size > 60 << 20);
    assert.ok(layer);
    const node3 = nodes[2] as ShoalProcess;
    const url = `${node3.url}/v2/app/blobs/${layer.digest}?ns=${NS}`;
    await waitFor(
      'layer discoverable from node 3',
      async () => (await fetch(url, { method: 'HEAD' })).status === 200,
      30_000,
    );
    const before = await Promise.all(nodes.slice(0, 2).map((node) => bytesSentFrom(node.port)));
    const out = join(dir, 'layer.out');
    const curl = new Child('curl', [
      '-sS',
      '--fail',
      '--limit-rate',
      '16M',
      '-o',
      out,
      '-w',
      '%{http_code} %{size_download}',
      url,
    ]);
    // Find the node that is streaming (its send counter grows by megabytes) and kill it mid-body.
    let serving = -1;
    await waitFor(
      'a peer streaming to node 3',
      async () => {
        await sleep(200);
        const now = await Promise.all(nodes.slice(0, 2).map((node) => bytesSentFrom(node.port)));
        serving = now.findIndex((sent, i) => sent - (before[i] ?? 0) > 8 << 20);
        return serving !== -1;
      },
      20_000,
    );
    await (nodes[serving] as ShoalProcess).stop(0);
    t.diagnostic(`killed node ${serving + 1} while it streamed; node ${2 - serving} must finish the body`);
    assert.equal(await curl.finished, 0, `${curl.output}\nnode 3 log:\n${node3.output.slice(-8000)}`);
    assert.equal(curl.output.trim(), `200 ${layer.size}`);
    assert.equal(await sha256File(out), layer.digest);
  });
});
