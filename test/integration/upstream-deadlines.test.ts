import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { waitFor } from '../harness/process.js';
import { pacedDownload } from '../harness/readers.js';
import { DistributionRegistry } from '../harness/registry.js';
import { pullThroughArgs, ShoalProcess } from '../harness/shoal.js';
import { ThrottledProxy } from '../harness/throttle.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/** The README's bounds at the defaults: headers within --upstream-timeout (10 s), retries included... */
const HEADERS_BOUND_MS = 10_000;
/** ...then each --idle-timeout (30 s) window must bring --upstream-min-rate × the window. */
const TRICKLE_BOUND_MS = HEADERS_BOUND_MS + 30_000;
/** Slack for process scheduling on a busy 2-core machine. */
const SLACK_MS = 3000;

describe('upstream deadlines at the defaults', { timeout: 180_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  const repository = 'deadline/app';

  before(async () => {
    dir = await shortTempDir('shoal-deadline');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
  });
  after(async () => {
    await registry?.stop();
    await removeDir(dir);
  });

  const largest = () => [...image.image.layers].sort((a, b) => b.size - a.size)[0] as { digest: string };

  it('an upstream trickling 200 B/s ends the request within the stated bound', async (t) => {
    const proxy = new ThrottledProxy({ host: '127.0.0.1', port: registry.port }, 200);
    await proxy.start();
    const shoal = new ShoalProcess(pullThroughArgs(join(dir, 'trickle'), proxy.host));
    await shoal.start();
    try {
      const started = performance.now();
      const result = await pacedDownload(
        `${shoal.url}/v2/${repository}/blobs/${largest().digest}?ns=${proxy.host}`,
      ).done;
      const ms = performance.now() - started;
      t.diagnostic(`status ${result.status}, ${result.length} bytes, ended after ${Math.round(ms)} ms`);
      assert.equal(result.complete, false, 'a trickle cannot have delivered the layer');
      assert.ok(ms < TRICKLE_BOUND_MS + SLACK_MS, `ended after ${Math.round(ms)} ms`);
      // The node logs why after it cut the body: its line reaches this process a moment after the cut.
      await waitFor(
        'the floor named in the node’s log',
        async () => /under the floor/.test(shoal.output),
        5000,
      );
    } finally {
      await shoal.stop();
      await proxy.stop();
    }
  });

  it('an upstream that accepts and never answers ends the request within --upstream-timeout', async (t) => {
    const held: Socket[] = [];
    const silent: Server = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const host = `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    const shoal = new ShoalProcess(pullThroughArgs(join(dir, 'silent'), host));
    await shoal.start();
    try {
      const started = performance.now();
      const response = await fetch(`${shoal.url}/v2/${repository}/blobs/${largest().digest}?ns=${host}`);
      await response.arrayBuffer().catch(() => undefined);
      const ms = performance.now() - started;
      t.diagnostic(`status ${response.status} after ${Math.round(ms)} ms`);
      // The README's answer to an upstream that does not answer: 503, after the retries.
      assert.equal(response.status, 503);
      assert.ok(ms < HEADERS_BOUND_MS + SLACK_MS, `answered after ${Math.round(ms)} ms`);
    } finally {
      await shoal.stop();
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });
});
