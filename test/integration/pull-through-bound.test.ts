import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { DistributionRegistry } from '../harness/registry.js';
import { pullThroughArgs, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/** Over the 4 MiB layer, under the 1 MiB and 4 MiB layers together: pulling both evicts. */
const BOUND = 4.5 * (1 << 20);

async function heldBytes(dataDir: string): Promise<number> {
  const dir = join(dataDir, 'blobs', 'sha256');
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

// The real CLI pulling through more than --cache-max-bytes: every download that fits is whole and correct,
// streams are never cut by eviction, and the cache stays within its bound afterwards. A layer larger than
// the bound is refused (404, so containerd fetches it from the registry) without a byte downloaded.
describe('pull-through with a bounded cache', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let shoal: ShoalProcess;
  const repository = 'bound/app';

  before(async () => {
    dir = await shortTempDir('shoal-pt-bound');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    shoal = new ShoalProcess([
      ...pullThroughArgs(join(dir, 'data'), registry.host),
      '--cache-max-bytes',
      String(BOUND),
    ]);
    await shoal.start();
  });

  after(async () => {
    await shoal?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it(`serves what fits whole, refuses the 64 MiB layer, and keeps at most ${BOUND} bytes`, async () => {
    const blobs = [image.image.config, ...image.image.layers];
    const fits = blobs.filter((blob) => blob.size <= BOUND);
    for (const blob of fits) {
      const response = await fetch(`${shoal.url}/v2/${repository}/blobs/${blob.digest}?ns=${registry.host}`);
      const bytes = Buffer.from(await response.arrayBuffer());
      assert.equal(response.status, 200);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
    }
    const total = fits.reduce((sum, blob) => sum + blob.size, 0);
    assert.ok(total > BOUND, 'the test pulls more than the bound');
    const held = await heldBytes(join(dir, 'data'));
    assert.ok(held <= BOUND, `held ${held} bytes, bound ${BOUND}`);
    assert.ok(held > 0, 'small recent content is still cached');
    const largest = blobs.filter((blob) => blob.size > BOUND);
    assert.equal(largest.length, 1);
    for (const blob of largest) {
      const url = `${shoal.url}/v2/${repository}/blobs/${blob.digest}?ns=${registry.host}`;
      assert.equal((await fetch(url, { method: 'HEAD' })).status, 404);
      const response = await fetch(url);
      assert.equal(response.status, 404);
      assert.equal(
        ((await response.json()) as { errors: { code: string }[] }).errors[0]?.code,
        'BLOB_UNKNOWN',
      );
    }
    assert.equal(await shoal.metric('shoal_cache_full_total{reason="bound"}'), 2);
    // Only what fits came down: the 64 MiB layer was refused before its body was read.
    const upstream = await shoal.metric(`shoal_upstream_bytes_total{registry="${registry.host}"}`);
    assert.ok(upstream >= total && upstream < total + (1 << 20), `${upstream} bytes from upstream`);
  });
});
