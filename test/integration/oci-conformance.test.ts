import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { ociPullConformance, type PullTarget } from '../conformance/oci-pull.js';
import {
  type MultiArchFixture,
  multiArchImage,
  type SingleImageFixture,
  smallImage,
} from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { DistributionRegistry } from '../harness/registry.js';
import { importLayout, pullThroughArgs, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const REPOSITORY = 'conformance/app';

function targetOf(
  url: string,
  repository: string,
  query: string,
  image: SingleImageFixture,
  multi: MultiArchFixture,
): PullTarget {
  const layer = image.image.layers[0];
  if (layer === undefined) throw new Error('the fixture has no layer');
  return {
    url,
    repository,
    query,
    tag: image.tag,
    manifestDigest: image.image.manifest.digest,
    blob: { digest: layer.digest, size: layer.size },
    indexTag: multi.tag,
    tags: [image.tag, multi.tag],
  };
}

// Real shoal processes at their defaults, checked against the spec's pull and content-discovery sections:
// the embedded store (by `ns`-less path, and with the registry named in the path, as podman and skopeo
// send), and pull-through in front of a CNCF distribution registry.
describe('OCI pull conformance', { timeout: 180_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let multi: MultiArchFixture;
  let embedded: ShoalProcess;
  let registry: DistributionRegistry;
  let pullThrough: ShoalProcess;

  before(async () => {
    dir = await shortTempDir('shoal-conformance');
    image = await smallImage('conformance');
    multi = await multiArchImage();
    for (const layout of [image.dir, multi.dir])
      await importLayout(join(dir, 'embedded'), layout, 'docker.io', REPOSITORY);
    embedded = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'embedded')]);
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, REPOSITORY);
    await pushLayout(multi.dir, multi.tag, registry.host, REPOSITORY);
    pullThrough = new ShoalProcess(pullThroughArgs(join(dir, 'pull-through'), registry.host));
    await Promise.all([embedded.start(), pullThrough.start()]);
  });

  after(async () => {
    await embedded?.stop();
    await pullThrough?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  ociPullConformance('embedded store', () => targetOf(embedded.url, REPOSITORY, '', image, multi));
  ociPullConformance('embedded store, registry named in the path', () =>
    targetOf(embedded.url, `docker.io/${REPOSITORY}`, '', image, multi),
  );
  ociPullConformance('pull-through from a distribution registry', () =>
    targetOf(pullThrough.url, REPOSITORY, `ns=${registry.host}`, image, multi),
  );
});
