import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { pullThroughArgs, ShoalProcess } from '../harness/shoal.js';
import { ThrottledProxy } from '../harness/throttle.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';
import { mountTmpfs } from '../harness/tmpfs.js';

const MiB = 1 << 20;
/** The node's disk: small enough to fill, large enough for the 4 MiB layer and the share kept free. */
const DISK = 24 * MiB;

/** Writes zeros into `path` until the disk says it is full. */
async function fillDisk(path: string): Promise<void> {
  const file = await open(path, 'w');
  const zeros = Buffer.alloc(256 << 10);
  try {
    for (;;) await file.write(zeros);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await file.close();
  }
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

// Regression (issue 26): --cache-max-bytes defaulted to no bound, so any pod could fill the node's disk
// through pull-through; a full disk was taken for an upstream that broke off (resumed there by Range), and
// a HEAD answered 200 for a blob the node could not store. The node's --data-dir here is a 24 MiB tmpfs.
describe('pull-through on a small and a full disk', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let proxy: ThrottledProxy;
  const unmount: Array<() => Promise<void>> = [];
  const nodes: ShoalProcess[] = [];
  const repository = 'disk/app';
  const layer = (size: number) => {
    const found = image.image.layers.find((each) => each.size >= size && each.size < 2 * size);
    assert.ok(found, `a layer of about ${size} bytes`);
    return found;
  };
  const blobUrl = (node: ShoalProcess, digest: string, host: string) =>
    `${node.url}/v2/${repository}/blobs/${digest}?ns=${host}`;

  before(async () => {
    dir = await shortTempDir('shoal-disk');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    // 1 MiB/s: the 4 MiB layer takes about 4 s to arrive, time to fill the disk halfway through.
    proxy = new ThrottledProxy({ host: '127.0.0.1', port: registry.port }, MiB);
    await proxy.start();
  });
  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    for (const each of unmount) await each();
    await proxy?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('at the default bound (10% of the disk), a layer over it is refused with 404 before any byte', async () => {
    const data = join(dir, 'small');
    unmount.push(await mountTmpfs(data, DISK));
    const node = new ShoalProcess(pullThroughArgs(data, registry.host));
    nodes.push(node);
    await node.start();
    const big = layer(4 * MiB);
    const head = await fetch(blobUrl(node, big.digest, registry.host), { method: 'HEAD' });
    assert.equal(head.status, 404, 'a 4 MiB layer does not fit under 10% of 24 MiB');
    const small = layer(1 * MiB);
    const got = await fetch(blobUrl(node, small.digest, registry.host));
    assert.equal(got.status, 200);
    assert.equal(sha256(Buffer.from(await got.arrayBuffer())), small.digest);
    assert.equal(await node.metric('shoal_cache_full_total{reason="bound"}'), 1);
    assert.match(node.output, /no room to pull through/);
  });

  it('a disk that fills up mid-download fails the download for good, keeps nothing of it, and serves what it has', async () => {
    const data = join(dir, 'full');
    unmount.push(await mountTmpfs(data, DISK));
    // The whole disk may be used: what stops this download is the disk, not the bound.
    const node = new ShoalProcess([...pullThroughArgs(data, proxy.host), '--cache-max-bytes', '100%']);
    nodes.push(node);
    await node.start();
    const small = layer(1 * MiB);
    const first = await fetch(blobUrl(node, small.digest, proxy.host));
    assert.equal(first.status, 200);
    assert.equal(sha256(Buffer.from(await first.arrayBuffer())), small.digest);

    const big = layer(4 * MiB);
    const response = await fetch(blobUrl(node, big.digest, proxy.host));
    assert.equal(response.status, 200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let received = 0;
    let filled = false;
    let cut = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        if (!filled && received >= MiB / 2) {
          filled = true;
          await fillDisk(join(data, 'filler'));
        }
      }
    } catch {
      cut = true;
    }
    assert.ok(filled, 'the disk was filled mid-download');
    assert.ok(cut && received < big.size, `the body was cut (${received} of ${big.size} bytes)`);
    await waitFor(
      'the full disk counted',
      async () => (await node.metric('shoal_cache_full_total{reason="write"}')) === 1,
      5000,
    );
    assert.match(node.output, /the disk is full while writing the spool/);
    assert.doesNotMatch(node.output, /download resumed/, 'a full disk is not an upstream that broke off');
    assert.deepEqual(await readdir(join(data, 'ingest')), [], 'nothing partial is kept');
    assert.ok(!(await readdir(join(data, 'blobs', 'sha256'))).includes(big.digest.slice(7)));

    // While the disk is full: the layer it cannot keep is refused at once, what it holds is served.
    const refused = await fetch(blobUrl(node, big.digest, proxy.host), { method: 'HEAD' });
    assert.equal(refused.status, 404);
    const held = await fetch(blobUrl(node, small.digest, proxy.host));
    assert.equal(held.status, 200);
    assert.equal(sha256(Buffer.from(await held.arrayBuffer())), small.digest);

    // Room again: the layer is pulled through whole.
    await rm(join(data, 'filler'));
    const again = await fetch(blobUrl(node, big.digest, proxy.host));
    assert.equal(again.status, 200);
    assert.equal(sha256(Buffer.from(await again.arrayBuffer())), big.digest);
  });
});
