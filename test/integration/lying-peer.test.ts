import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { blobFile, flipByte, sliceDigest } from '../harness/corrupt.js';
import { multiLayerImage, type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import type { OciDescriptor } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { importLayout, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NS = '127.0.0.1:5000';

interface Exchange {
  status: number;
  length: number;
  received: number;
  sha256: string;
  contentRange: string | undefined;
}

/** One GET on a fresh connection; what arrived, even when the server cut the connection. */
function exchange(url: string, headers: Record<string, string> = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      let received = 0;
      const done = (): void =>
        resolve({
          status: res.statusCode ?? 0,
          length: Number(res.headers['content-length'] ?? -1),
          received,
          sha256: `sha256:${hash.digest('hex')}`,
          contentRange: res.headers['content-range'],
        });
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
      });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', () => undefined);
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer from ${url}`)));
    req.end();
  });
}

// Real processes. The liar holds the image with two layers corrupted on disk (one byte flipped in the middle
// of the 64 MiB layer, the last byte of the 4 MiB one) and one manifest corrupted. Clients find it through
// the DHT. No response may ever complete with wrong bytes; the liar must be set aside, counted and told,
// and an honest peer that joins later must serve the same content, whole and ranged.
describe('a lying peer: bad bytes are never delivered as a complete body', { timeout: 240_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let small: SingleImageFixture;
  let routerPorts: number[];
  const nodes = new Map<string, ShoalProcess>();
  const blobUrl = (node: string, blob: OciDescriptor): string =>
    `${nodes.get(node)?.url}/v2/app/blobs/${blob.digest}?ns=${NS}`;
  const middle = (): OciDescriptor => image.image.layers[2] as OciDescriptor;
  const end = (): OciDescriptor => image.image.layers[3] as OciDescriptor;

  async function importInto(name: string, fixture: SingleImageFixture, repository: string) {
    await importLayout(join(dir, name), fixture.dir, NS, repository);
  }

  async function startNode(name: string, index: number): Promise<ShoalProcess> {
    const p2p = staticP2pArgs({
      dataDir: join(dir, name),
      routerPort: routerPorts[index] as number,
      bootstrapPort: routerPorts[0] as number,
    });
    const node = new ShoalProcess(['--store', 'embedded', ...p2p]);
    await node.start();
    nodes.set(name, node);
    return node;
  }

  before(async () => {
    dir = await shortTempDir('shoal-liar');
    [image, small] = await Promise.all([multiLayerImage(), smallImage('liar-manifest')]);
    routerPorts = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    for (const name of ['liar', 'honest']) await importInto(name, image, 'app');
    await importInto('liar', small, 'small');
    const liar = join(dir, 'liar');
    await flipByte(blobFile(liar, middle()), middle().size >> 1);
    await flipByte(blobFile(liar, end()), end().size - 1);
    await flipByte(blobFile(liar, small.image.manifest), 20);
    await startNode('liar', 0);
    await startNode('client', 1);
    await startNode('client2', 2);
    await startNode('client3', 3);
  });

  after(async () => {
    await Promise.all([...nodes.values()].map((node) => node.stop()));
    await removeDir(dir);
  });

  it('cuts a body whose middle is corrupt, sets the liar aside, and the liar deletes its copy', async () => {
    const client = nodes.get('client') as ShoalProcess;
    const liar = nodes.get('liar') as ShoalProcess;
    await waitFor(
      'layer found through the liar',
      async () => {
        return (await fetch(blobUrl('client', middle()), { method: 'HEAD' })).status === 200;
      },
      30_000,
    );
    const got = await exchange(blobUrl('client', middle()));
    assert.equal(got.status, 200);
    assert.equal(got.length, middle().size);
    assert.ok(got.received < got.length, `cut off after ${got.received} of ${got.length} bytes`);
    assert.equal(await client.metric('shoal_peer_corrupt_total{kind="blob"}'), 1);
    assert.equal(await client.metric('shoal_peer_quarantines_total{reason="corrupt"}'), 1);
    // The report reaches the liar, which re-checks and deletes its corrupt copy.
    await waitFor(
      'liar re-checked its copy',
      async () => {
        return (await liar.metric('shoal_local_corrupt_total{trigger="report"}')) === 1;
      },
      20_000,
    );
    const own = await fetch(blobUrl('liar', middle()), { method: 'HEAD' });
    assert.equal(own.status, 404, 'the liar no longer holds the corrupt layer');
  });

  it('does not ask the quarantined liar again', async () => {
    // The liar still advertises the other corrupt layer, but this client has set it aside.
    const got = await exchange(blobUrl('client', end()));
    assert.equal(got.status, 404);
  });

  it('cuts a body whose last byte is corrupt (another client)', async () => {
    const got = await exchange(blobUrl('client2', end()));
    assert.equal(got.status, 200);
    assert.ok(got.received < got.length, `cut off after ${got.received} of ${got.length} bytes`);
    assert.notEqual(got.sha256, end().digest);
    assert.equal(
      await (nodes.get('client2') as ShoalProcess).metric('shoal_peer_corrupt_total{kind="blob"}'),
      1,
    );
  });

  it('refuses a manifest that does not hash to the digest the peer claimed for the tag', async () => {
    // A client that has not met the liar yet (the others have set it aside).
    const url = `${nodes.get('client3')?.url}/v2/small/manifests/${small.tag}?ns=${NS}`;
    const accept = 'application/vnd.oci.image.manifest.v1+json';
    await waitFor(
      'tag found through the liar',
      async () => {
        return (await fetch(url, { method: 'HEAD', headers: { accept } })).status === 200;
      },
      30_000,
    );
    const got = await exchange(url, { accept });
    assert.equal(got.status, 404);
    assert.equal(
      await (nodes.get('client3') as ShoalProcess).metric('shoal_peer_corrupt_total{kind="manifest"}'),
      1,
    );
  });

  it('an honest peer that joins serves the same layers intact, whole and ranged', async () => {
    await startNode('honest', 4);
    await waitFor(
      'layers found through the honest peer',
      async () => {
        const heads = [middle(), end()].map((blob) => fetch(blobUrl('client', blob), { method: 'HEAD' }));
        return (await Promise.all(heads)).every((head) => head.status === 200);
      },
      30_000,
    );
    for (const blob of [middle(), end()]) {
      const whole = await exchange(blobUrl('client', blob));
      assert.deepEqual([whole.status, whole.received, whole.sha256], [200, blob.size, blob.digest]);
      const from = blob.size - 1_000_000;
      const ranged = await exchange(blobUrl('client', blob), { range: `bytes=${from}-` });
      assert.equal(ranged.status, 206);
      assert.equal(ranged.contentRange, `bytes ${from}-${blob.size - 1}/${blob.size}`);
      assert.equal(ranged.received, 1_000_000);
      assert.equal(ranged.sha256, await sliceDigest(image.dir, blob, from));
    }
  });
});
