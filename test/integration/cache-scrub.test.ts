import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Containerd } from '../harness/containerd.js';
import { blobFile, flipByte } from '../harness/corrupt.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { containerdStoreArgs, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// A node that serves from containerd (real) and pulls through from a CNCF registry keeps what it fetched in
// an embedded cache beside containerd. That cache sits behind the same guard as containerd's content: a
// file in it that rotted on disk is found by the scrub (--verify-local), deleted, and neither served nor
// advertised again.
describe('the pull-through cache beside containerd is scrubbed like the rest', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let containerd: Containerd;
  let shoal: ShoalProcess | undefined;
  /** A member beside it: a node advertises what it holds only when it is not alone. */
  let peer: ShoalProcess | undefined;
  let routerPort = 0;
  const repository = 'scrub/app';
  const layer = (): OciDescriptor => image.image.layers[0] as OciDescriptor;

  const node = (): ShoalProcess =>
    new ShoalProcess([
      ...containerdStoreArgs(containerd),
      ...staticP2pArgs({ dataDir: join(dir, 'data'), routerPort, bootstrapPort: routerPort }),
      '--upstream-fallback',
      '--mirrored-registries',
      `http://${registry.host}`,
      '--insecure-registries',
      registry.host,
      '--verify-local',
    ]);
  const head = (digest: string) =>
    fetch(`${shoal?.url}/v2/${repository}/blobs/${digest}?ns=${registry.host}`, { method: 'HEAD' });

  before(async () => {
    dir = await shortTempDir('shoal-cache-scrub');
    image = await smallImage('cache-scrub');
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    containerd = new Containerd(join(dir, 'ctrd'));
    await containerd.start();
    routerPort = await freePort();
    const peerRouter = await freePort();
    peer = new ShoalProcess([
      '--store',
      'embedded',
      ...staticP2pArgs({ dataDir: join(dir, 'peer'), routerPort: peerRouter, bootstrapPort: routerPort }),
    ]);
  });

  after(async () => {
    await shoal?.stop();
    await peer?.stop();
    await containerd?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('finds a rotten file in the cache, deletes it, and stops serving and advertising it', async () => {
    shoal = node();
    await Promise.all([shoal.start(), peer?.start()]);
    const fetched = await fetch(`${shoal.url}/v2/${repository}/blobs/${layer().digest}?ns=${registry.host}`);
    const body = await fetched.text();
    assert.equal(fetched.status, 200, `${body}\n${shoal.output}`);
    const cached = blobFile(join(dir, 'data', 'cache'), layer());
    await waitFor('the layer committed to the cache', async () => existsSync(cached), 10_000);
    await waitFor(
      'the layer advertised',
      async () => (await shoal?.debugState())?.routing?.advertised.digest === 1,
      10_000,
    );
    await shoal.stop();
    // The disk rots while the node is down, and the registry goes away: nothing can fetch the layer anew.
    await flipByte(cached, layer().size >> 1);
    await registry.stop();
    shoal = node();
    await shoal.start();
    await waitFor(
      'the start-up scrub found the rotten cache file',
      async () => (await shoal?.metric('shoal_local_corrupt_total{trigger="scrub"}')) === 1,
      20_000,
    );
    assert.equal(existsSync(cached), false, 'the rotten file was deleted');
    assert.notEqual((await head(layer().digest)).status, 200, 'the rotten layer is still served');
    assert.equal(
      (await shoal.debugState()).routing?.advertised.digest,
      0,
      'the rotten layer is still advertised',
    );
  });
});
