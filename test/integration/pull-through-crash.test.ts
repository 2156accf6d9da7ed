import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { pullThroughArgs, ShoalProcess } from '../harness/shoal.js';
import { ThrottledProxy } from '../harness/throttle.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// The real CLI pulling a 64 MiB layer through a slow upstream is SIGKILLed mid-spool. After a restart on
// the same data directory, no partial file is left or served: the layer is fetched again and is whole.
describe('pull-through: a crash while spooling', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let slow: ThrottledProxy;
  let shoal: ShoalProcess | undefined;
  const repository = 'crash/app';
  const layer = (): OciDescriptor => image.image.layers[2] as OciDescriptor;
  const args = () => [...pullThroughArgs(join(dir, 'data'), slow.host)];

  before(async () => {
    dir = await shortTempDir('shoal-pt-crash');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    slow = new ThrottledProxy({ host: '127.0.0.1', port: registry.port }, 16 << 20);
    await slow.start();
  });

  after(async () => {
    await shoal?.stop();
    await slow?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('leaves no partial blob, and serves the whole layer after the restart', async () => {
    shoal = new ShoalProcess(args());
    await shoal.start();
    const path = `/v2/${repository}/blobs/${layer().digest}?ns=${slow.host}`;
    // Start the pull, and kill shoal once part of the layer has been spooled.
    request(`${shoal.url}${path}`, { agent: false }, (res) => res.resume())
      .on('error', () => undefined)
      .end();
    const ingest = join(dir, 'data', 'ingest');
    await waitFor(
      'a partly spooled layer',
      async () => {
        const names = await readdir(ingest);
        return names.length > 0 && (await stat(join(ingest, names[0] as string))).size > 4 << 20;
      },
      30_000,
    );
    await shoal.stop(0);
    assert.ok((await readdir(ingest)).length > 0, 'the crash left a partial file behind');
    shoal = new ShoalProcess(args());
    await shoal.start();
    assert.deepEqual(await readdir(ingest), [], 'removed at start');
    assert.ok(!(await readdir(join(dir, 'data', 'blobs', 'sha256'))).includes(layer().digest.slice(7)));
    const response = await fetch(`${shoal.url}${path}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    assert.equal(response.status, 200);
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer().digest);
  });
});
