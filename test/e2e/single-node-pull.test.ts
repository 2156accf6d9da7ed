import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Containerd } from '../harness/containerd.js';
import {
  type MultiArchFixture,
  multiArchImage,
  multiLayerImage,
  type SingleImageFixture,
  smallImage,
} from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { DistributionRegistry } from '../harness/registry.js';
import { configureMirror, containerdStoreArgs, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// All real: distribution registry upstream, containerd A pulls from it, then the registry stops and
// containerd B and C pull through a shoal that serves A's content store.
describe('e2e: containerd pulls through a single shoal node', { timeout: 600_000 }, () => {
  let dir: string;
  let registry: DistributionRegistry;
  let nodeA: Containerd;
  let nodeB: Containerd;
  let nodeC: Containerd;
  let shoal: ShoalProcess;
  let big: SingleImageFixture;
  let multi: MultiArchFixture;
  const bigRef = (): string => `${registry.host}/e2e/big:${big.tag}`;
  const multiRef = (): string => `${registry.host}/e2e/multi:${multi.tag}`;

  before(async () => {
    dir = await shortTempDir('shoal-e2e');
    [big, multi] = await Promise.all([multiLayerImage(), multiArchImage()]);
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(big.dir, big.tag, registry.host, 'e2e/big');
    await pushLayout(multi.dir, multi.tag, registry.host, 'e2e/multi');
    nodeA = new Containerd(join(dir, 'a'));
    nodeB = new Containerd(join(dir, 'b'));
    nodeC = new Containerd(join(dir, 'c'));
    await Promise.all([nodeA.start(), nodeB.start(), nodeC.start()]);
    await nodeA.pull(bigRef(), ['--plain-http']);
    await nodeA.pull(multiRef(), ['--plain-http']);
    await registry.stop();
    shoal = new ShoalProcess([...containerdStoreArgs(nodeA), '--data-dir', join(dir, 'shoal-data')]);
    await shoal.start();
    await configureMirror(nodeB.hostsDir, registry.url, shoal.url);
    await configureMirror(nodeC.hostsDir, registry.url, shoal.url);
  });

  after(async () => {
    await shoal?.stop();
    await Promise.all([nodeA?.stop(), nodeB?.stop(), nodeC?.stop(), registry?.stop()]);
    await removeDir(dir);
  });

  it('node A holds both images from upstream', async () => {
    const images = await nodeA.images();
    assert.equal(images.get(bigRef()), big.image.manifest.digest);
    assert.equal(images.get(multiRef()), multi.index.digest);
  });

  it('node B pulls both images by tag through shoal with the upstream gone', async (t) => {
    const started = Date.now();
    await nodeB.pull(bigRef());
    t.diagnostic(
      `pull of the ${big.image.layers.reduce((sum, layer) => sum + layer.size, 0) >> 20} MiB image through shoal: ${Date.now() - started} ms`,
    );
    await nodeB.pull(multiRef());
    const images = await nodeB.images();
    assert.equal(images.get(bigRef()), big.image.manifest.digest);
    assert.equal(images.get(multiRef()), multi.index.digest);
    const content = await nodeB.contentDigests();
    const amd64 = multi.images.find((image) => image.manifest.platform?.architecture === 'amd64');
    assert.ok(amd64);
    for (const blob of [
      big.image.manifest,
      big.image.config,
      ...big.image.layers,
      multi.index,
      amd64.manifest,
      amd64.config,
      ...amd64.layers,
    ]) {
      assert.ok(content.has(blob.digest), `node B lacks ${blob.digest}`);
    }
  });

  it('node C pulls both images by digest through shoal', async () => {
    const bigByDigest = `${registry.host}/e2e/big@${big.image.manifest.digest}`;
    const multiByDigest = `${registry.host}/e2e/multi@${multi.index.digest}`;
    await nodeC.pull(bigByDigest);
    await nodeC.pull(multiByDigest);
    const content = await nodeC.contentDigests();
    for (const blob of [big.image.manifest, big.image.config, ...big.image.layers, multi.index]) {
      assert.ok(content.has(blob.digest), `node C lacks ${blob.digest}`);
    }
    const images = await nodeC.images();
    assert.equal(images.get(bigByDigest), big.image.manifest.digest);
  });

  it('a pull of an image shoal does not hold fails over to upstream at once', async (t) => {
    await registry.start();
    const fresh = await smallImage('e2e-unknown');
    await pushLayout(fresh.dir, fresh.tag, registry.host, 'e2e/fresh');
    const ref = `${registry.host}/e2e/fresh:${fresh.tag}`;
    const started = Date.now();
    await nodeB.pull(ref);
    const elapsed = Date.now() - started;
    t.diagnostic(`pull of an image shoal lacks, via fallback to upstream: ${elapsed} ms`);
    assert.equal((await nodeB.images()).get(ref), fresh.image.manifest.digest);
    // shoal answers a miss with 404 in milliseconds; a stalled mirror would cost containerd its full timeout.
    assert.ok(elapsed < 10_000, `fallback pull took ${elapsed} ms`);
    const shoalMiss = await fetch(`${shoal.url}/v2/e2e/fresh/manifests/${fresh.tag}?ns=${registry.host}`, {
      method: 'HEAD',
    });
    assert.equal(shoalMiss.status, 404);
  });
});
