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

const BOUND = 8 << 20;

async function heldBytes(dataDir: string): Promise<number> {
  const dir = join(dataDir, 'blobs', 'sha256');
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

// The real CLI pulling through more than --cache-max-bytes: every download is whole and correct, streams
// are never cut by eviction, and the cache stays within its bound afterwards.
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

  it(`serves 69 MiB of layers whole and keeps at most ${BOUND >> 20} MiB`, async () => {
    const blobs = [image.image.config, ...image.image.layers];
    for (const blob of blobs) {
      const response = await fetch(`${shoal.url}/v2/${repository}/blobs/${blob.digest}?ns=${registry.host}`);
      const bytes = Buffer.from(await response.arrayBuffer());
      assert.equal(response.status, 200);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
    }
    const total = blobs.reduce((sum, blob) => sum + blob.size, 0);
    assert.ok(total > BOUND, 'the test pulls more than the bound');
    const held = await heldBytes(join(dir, 'data'));
    assert.ok(held <= BOUND, `held ${held} bytes, bound ${BOUND}`);
    assert.ok(held > 0, 'small recent content is still cached');
  });
});
