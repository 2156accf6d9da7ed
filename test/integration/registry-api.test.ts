import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from '../../src/main/oci/media-types.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import { importOciLayout } from '../../src/main/store/oci-layout.js';
import {
  type MultiArchFixture,
  multiArchImage,
  type SingleImageFixture,
  smallImage,
} from '../harness/fixtures.js';
import { startRegistry } from '../harness/http.js';

const NS = '127.0.0.1:5000';

describe('registry API over HTTP (uWebSockets.js)', () => {
  let url: string;
  let stop: () => Promise<void>;
  let small: SingleImageFixture;
  let multi: MultiArchFixture;
  let layerBytes: Buffer;
  const layer = () => small.image.layers[0] as { digest: string; size: number };
  const blobUrl = (digest: string) => `${url}/v2/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;

  before(async () => {
    [small, multi] = await Promise.all([smallImage('api'), multiArchImage()]);
    const store = new MemoryStore();
    await importOciLayout(store, small.dir, { registry: NS, repository: 'app' });
    await importOciLayout(store, multi.dir, { registry: NS, repository: 'multi' });
    await importOciLayout(store, small.dir, { registry: 'docker.io', repository: 'library/app' });
    layerBytes = await readFile(join(small.dir, 'blobs', 'sha256', layer().digest.slice(7)));
    ({ url, stop } = await startRegistry(store, { registryFilters: [/:blocked$/, /^ghcr\.io\//] }));
  });
  after(() => stop());

  it('answers the /v2/ ping with the API version header', async () => {
    for (const method of ['GET', 'HEAD']) {
      const response = await fetch(`${url}/v2/`, { method });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('docker-distribution-api-version'), 'registry/2.0');
    }
  });

  it('serves a manifest by tag with its media type, length and digest', async () => {
    const response = await fetch(`${url}/v2/app/manifests/${small.tag}?ns=${NS}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), MEDIA_TYPE_OCI_MANIFEST);
    assert.equal(response.headers.get('docker-content-digest'), small.image.manifest.digest);
    const body = Buffer.from(await response.arrayBuffer());
    assert.equal(Number(response.headers.get('content-length')), small.image.manifest.size);
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, small.image.manifest.digest);
  });

  it('answers HEAD on a manifest with headers and no body (containerd resolves tags this way)', async () => {
    const response = await fetch(`${url}/v2/multi/manifests/${multi.tag}?ns=${encodeURIComponent(NS)}`, {
      method: 'HEAD',
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), MEDIA_TYPE_OCI_INDEX);
    assert.equal(response.headers.get('content-length'), String(multi.index.size));
    assert.equal(response.headers.get('docker-content-digest'), multi.index.digest);
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  it('serves manifests by digest', async () => {
    const response = await fetch(`${url}/v2/multi/manifests/${multi.index.digest}?ns=${NS}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), MEDIA_TYPE_OCI_INDEX);
  });

  it('serves blobs with length, digest and Accept-Ranges', async () => {
    const response = await fetch(blobUrl(layer().digest));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), String(layer().size));
    assert.equal(response.headers.get('docker-content-digest'), layer().digest);
    assert.equal(response.headers.get('accept-ranges'), 'bytes');
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), layerBytes);
    const head = await fetch(blobUrl(layer().digest), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(layer().size));
  });

  for (const [range, start, end] of [
    ['bytes=0-99', 0, 99],
    ['bytes=1000-', 1000, -1],
    ['bytes=-500', -500, -1],
  ] as const) {
    it(`answers Range ${range} with 206 and Content-Range`, async () => {
      const response = await fetch(blobUrl(layer().digest), { headers: { Range: range } });
      assert.equal(response.status, 206);
      const size = layer().size;
      const first = start < 0 ? size + start : start;
      const last = end < 0 ? size - 1 : end;
      assert.equal(response.headers.get('content-range'), `bytes ${first}-${last}/${size}`);
      assert.equal(response.headers.get('content-length'), String(last - first + 1));
      assert.deepEqual(Buffer.from(await response.arrayBuffer()), layerBytes.subarray(first, last + 1));
    });
  }

  it('answers an unsatisfiable Range with 416 and the size', async () => {
    const response = await fetch(blobUrl(layer().digest), { headers: { Range: `bytes=${layer().size}-` } });
    assert.equal(response.status, 416);
    assert.equal(response.headers.get('content-range'), `bytes */${layer().size}`);
    assert.equal(
      ((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'RANGE_INVALID',
    );
  });

  it('does not serve a manifest as a blob, nor a blob as a manifest', async () => {
    const asBlob = await fetch(blobUrl(small.image.manifest.digest));
    assert.equal(asBlob.status, 404);
    assert.equal(
      ((await asBlob.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'BLOB_UNKNOWN',
    );
    const asManifest = await fetch(`${url}/v2/app/manifests/${small.image.config.digest}?ns=${NS}`);
    assert.equal(asManifest.status, 404);
    assert.equal(
      ((await asManifest.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'MANIFEST_UNKNOWN',
    );
  });

  it('takes the registry from ns and uses the default registry without it (podman)', async () => {
    const withoutNs = await fetch(`${url}/v2/library/app/manifests/${small.tag}`);
    assert.equal(withoutNs.status, 200);
    const otherRegistry = await fetch(`${url}/v2/app/manifests/${small.tag}?ns=registry.example:5000`);
    assert.equal(otherRegistry.status, 404);
  });

  it('answers 404 NAME_UNKNOWN for references a registry filter excludes', async () => {
    const response = await fetch(`${url}/v2/app/manifests/blocked?ns=${NS}`);
    assert.equal(response.status, 404);
    assert.equal(
      ((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'NAME_UNKNOWN',
    );
    const byRegistry = await fetch(`${url}/v2/app/manifests/${small.tag}?ns=ghcr.io`);
    assert.equal(
      ((await byRegistry.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'NAME_UNKNOWN',
    );
  });

  it('answers misses at once with 404', async () => {
    const started = performance.now();
    const response = await fetch(`${url}/v2/app/manifests/missing?ns=${NS}`);
    assert.equal(response.status, 404);
    assert.ok(performance.now() - started < 1000);
    assert.equal(
      ((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'MANIFEST_UNKNOWN',
    );
  });

  it('reports liveness and readiness', async () => {
    assert.equal((await fetch(`${url}/livez`)).status, 200);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
  });
});

describe('registry API: mirrored registries', () => {
  it('serves only the registries listed', async () => {
    const small = await smallImage('api');
    const store = new MemoryStore();
    await importOciLayout(store, small.dir, { registry: NS, repository: 'app' });
    await importOciLayout(store, small.dir, { registry: 'docker.io', repository: 'app' });
    const { url, stop } = await startRegistry(store, { mirroredRegistries: ['docker.io'] });
    try {
      assert.equal((await fetch(`${url}/v2/app/manifests/${small.tag}?ns=docker.io`)).status, 200);
      const refused = await fetch(`${url}/v2/app/manifests/${small.tag}?ns=${NS}`);
      assert.equal(refused.status, 404);
      assert.equal(
        ((await refused.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
        'NAME_UNKNOWN',
      );
    } finally {
      await stop();
    }
  });

  it('reports not ready while the store is not', async () => {
    const store = new MemoryStore();
    store.ready = async () => false;
    const { url, stop } = await startRegistry(store);
    try {
      assert.equal((await fetch(`${url}/readyz`)).status, 503);
      assert.equal((await fetch(`${url}/livez`)).status, 200);
    } finally {
      await stop();
    }
  });
});
