import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { run } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { pullThroughArgs, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

function download(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; sha256: string; length: number }> {
  return new Promise((resolve, reject) => {
    request(url, { headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, sha256: `sha256:${hash.digest('hex')}`, length }),
      );
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** GETs of `path` the registry logged as answered 200 (its access log). */
function upstreamGets(registry: DistributionRegistry, path: string): number {
  return registry.output
    .split('\n')
    .filter((line) => line.includes(`"GET ${path}`) && line.includes('" 200 ')).length;
}

// The real CLI with --upstream-fallback in front of a local CNCF distribution registry: concurrent cold
// pulls share one upstream download; what was pulled keeps being served, by tag too, once upstream is gone;
// a client that sends no ?ns= (podman, skopeo) gets the --default-registry.
describe('pull-through on one node', { timeout: 180_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let shoal: ShoalProcess;
  const repository = 'pt/app';
  const layer = (): OciDescriptor => image.image.layers[2] as OciDescriptor; // 64 MiB

  before(async () => {
    dir = await shortTempDir('shoal-pull-through');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    shoal = new ShoalProcess([
      ...pullThroughArgs(join(dir, 'data'), registry.host),
      '--default-registry',
      registry.host,
    ]);
    await shoal.start();
  });

  after(async () => {
    await shoal?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('serves 8 concurrent cold pulls of a 64 MiB layer from one upstream download', async () => {
    const url = `${shoal.url}/v2/${repository}/blobs/${layer().digest}?ns=${registry.host}`;
    const results = await Promise.all(Array.from({ length: 8 }, () => download(url)));
    for (const result of results) assert.deepEqual([result.status, result.sha256], [200, layer().digest]);
    assert.equal(upstreamGets(registry, `/v2/${repository}/blobs/${layer().digest}`), 1);
  });

  it('serves a ranged cold pull exactly', async () => {
    const blob = image.image.layers[3] as OciDescriptor;
    const url = `${shoal.url}/v2/${repository}/blobs/${blob.digest}?ns=${registry.host}`;
    const from = blob.size - 1000;
    const got = await download(url, { range: `bytes=${from}-` });
    const bytes = await readFile(join(image.dir, 'blobs', 'sha256', blob.digest.slice(7)));
    assert.equal(got.status, 206);
    assert.equal(got.sha256, `sha256:${createHash('sha256').update(bytes.subarray(from)).digest('hex')}`);
  });

  it('lets skopeo copy the image by tag with no ?ns= (the default registry)', async () => {
    const out = join(dir, 'copied');
    await run('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://127.0.0.1:${shoal.port}/${repository}:${image.tag}`,
      `dir:${out}`,
    ]);
    const manifest = await readFile(join(out, 'manifest.json'));
    assert.equal(
      `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
      image.image.manifest.digest,
    );
  });

  it('keeps serving what it pulled, by tag and by digest, once upstream is gone', async () => {
    await registry.stop();
    const accept = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = await download(
      `${shoal.url}/v2/${repository}/manifests/${image.tag}?ns=${registry.host}`,
      { accept },
    );
    assert.deepEqual([manifest.status, manifest.sha256], [200, image.image.manifest.digest]);
    const blob = await download(`${shoal.url}/v2/${repository}/blobs/${layer().digest}?ns=${registry.host}`);
    assert.deepEqual([blob.status, blob.sha256], [200, layer().digest]);
  });
});
