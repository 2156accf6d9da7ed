import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { freePort, waitFor } from '../harness/process.js';
import { importLayout, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NS = '127.0.0.1:5000';
const SIZE = 5;

const readyz = async (node: ShoalProcess): Promise<number> => (await fetch(`${node.url}/readyz`)).status;

// Five real shoal processes on loopback joined by static bootstrap through node 1, whose embedded store
// alone holds an image. The other nodes find it through the DHT and stream it from node 1.
describe('P2P cluster of 5 shoal processes (static bootstrap)', { timeout: 180_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  const nodes: ShoalProcess[] = [];
  const node = (i: number): ShoalProcess => nodes[i] as ShoalProcess;

  before(async () => {
    dir = await shortTempDir('shoal-p2p');
    image = await smallImage('p2p-cluster');
    await importLayout(join(dir, 'n0'), image.dir, NS, 'app');
    const routerPorts = await Promise.all(Array.from({ length: SIZE }, () => freePort()));
    for (let i = 0; i < SIZE; i++) {
      const p2p = staticP2pArgs({
        dataDir: join(dir, `n${i}`),
        routerPort: routerPorts[i] as number,
        bootstrapPort: routerPorts[0] as number,
      });
      nodes.push(new ShoalProcess(['--store', 'embedded', ...p2p]));
    }
    await node(0).start();
  });

  after(async () => {
    await Promise.all(nodes.map((each) => each.stop()));
    await removeDir(dir);
  });

  it('node 1 is alive at once (its bootstrap names only itself: see p2p-bootstrap for that readiness); all are ready once the others join', async () => {
    assert.equal((await fetch(`${node(0).url}/livez`)).status, 200);
    for (let i = 1; i < SIZE; i++) await node(i).start();
    await waitFor(
      'all nodes ready',
      async () => (await Promise.all(nodes.map(readyz))).every((status) => status === 200),
      30_000,
    );
  });

  it('node 5 resolves the tag and streams every blob held only by node 1', async (t) => {
    const started = Date.now();
    await waitFor(
      'tag discoverable from node 5',
      async () =>
        (await fetch(`${node(4).url}/v2/app/manifests/${image.tag}?ns=${NS}`, { method: 'HEAD' })).status ===
        200,
      30_000,
    );
    t.diagnostic(`time from start until node 5 resolved the tag: ${Date.now() - started} ms`);
    for (const blob of [image.image.manifest, image.image.config, ...image.image.layers]) {
      const kind = blob === image.image.manifest ? 'manifests' : 'blobs';
      const response = await fetch(`${node(4).url}/v2/app/${kind}/${blob.digest}?ns=${NS}`);
      assert.equal(response.status, 200, blob.digest);
      const bytes = Buffer.from(await response.arrayBuffer());
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
    }
  });

  it('stops serving a dead node’s records within seconds', async (t) => {
    const layer = image.image.layers[0];
    assert.ok(layer);
    await node(0).stop();
    const started = Date.now();
    const response = await fetch(`${node(3).url}/v2/app/blobs/${layer.digest}?ns=${NS}`);
    const elapsed = Date.now() - started;
    t.diagnostic(`request for content only the dead node held answered ${response.status} in ${elapsed} ms`);
    assert.equal(response.status, 404);
    assert.ok(elapsed < 5000, `took ${elapsed} ms`);
  });
});
