import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { blobFile, flipByte } from '../harness/corrupt.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { waitFor } from '../harness/process.js';
import { importLayout, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NS = '127.0.0.1:5000';

// The real CLI with --verify-local: a blob that rotted on disk is found by the start-up scrub, deleted and no
// longer served, while the intact content still is.
describe('--verify-local scrubs the embedded store', { timeout: 60_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let shoal: ShoalProcess;

  before(async () => {
    dir = await shortTempDir('shoal-scrub');
    image = await smallImage('scrub');
    const data = join(dir, 'data');
    await importLayout(data, image.dir, NS, 'app');
    const layer = image.image.layers[0];
    assert.ok(layer);
    await flipByte(blobFile(data, layer), layer.size >> 1);
    shoal = new ShoalProcess(['--store', 'embedded', '--data-dir', data, '--verify-local']);
    await shoal.start();
  });

  after(async () => {
    await shoal?.stop();
    await removeDir(dir);
  });

  it('withdraws the rotten blob and keeps serving the rest', async () => {
    const layer = image.image.layers[0];
    assert.ok(layer);
    await waitFor(
      'scrub found the rotten layer',
      async () => {
        return (await shoal.metric('shoal_local_corrupt_total{trigger="scrub"}')) === 1;
      },
      20_000,
    );
    const blob = (digest: string) =>
      fetch(`${shoal.url}/v2/app/blobs/${digest}?ns=${NS}`, { method: 'HEAD' });
    assert.equal((await blob(layer.digest)).status, 404);
    assert.equal((await blob(image.image.config.digest)).status, 200);
  });
});
