import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  BlobUnknownError,
  ManifestUnknownError,
  MethodUnsupportedError,
  NameUnknownError,
  PeerUnauthorizedError,
} from '../../../src/main/errors.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { MEDIA_TYPE_OCI_MANIFEST } from '../../../src/main/oci/media-types.js';
import { PullHandler } from '../../../src/main/registry/handler.js';
import type { PullRequest } from '../../../src/main/registry/request.js';
import { MemoryStore } from '../../../src/main/store/memory.js';

const digestOf = (bytes: Buffer): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
const header = (headers: ReadonlyArray<readonly [string, string]>, name: string): string | undefined =>
  headers.find(([key]) => key === name)?.[1];

describe('PullHandler', () => {
  const store = new MemoryStore();
  const layer = Buffer.from('layer bytes');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: {},
      layers: [{ digest: digestOf(layer) }],
    }),
  );
  const handler = new PullHandler({ store, ready: async () => true }, { defaultRegistry: 'docker.io' });
  const request = (path: string, extra: Partial<PullRequest> = {}): PullRequest => ({
    method: 'GET',
    path,
    query: '',
    range: undefined,
    ...extra,
  });

  before(async () => {
    await store.ingest(digestOf(layer), [layer]);
    await store.ingest(digestOf(manifest), [manifest]);
    await store.tag('docker.io', 'library/app', 'v1', digestOf(manifest));
  });

  it('answers a manifest by tag with its bytes and media type', async () => {
    const reply = await handler.handle(request('/v2/library/app/manifests/v1'));
    assert.equal(reply.kind, 'full');
    assert.equal(reply.status, 200);
    assert.equal(header(reply.headers, 'Content-Type'), MEDIA_TYPE_OCI_MANIFEST);
    assert.equal(header(reply.headers, 'Docker-Content-Digest'), digestOf(manifest));
    assert.ok(reply.kind === 'full' && reply.body?.equals(manifest));
  });

  it('answers HEAD without reading the body', async () => {
    const reply = await handler.handle(request('/v2/library/app/manifests/v1', { method: 'HEAD' }));
    assert.ok(reply.kind === 'full' && reply.body === undefined);
    assert.equal(header(reply.headers, 'Content-Length'), String(manifest.length));
  });

  it('streams blobs and ranges through a reader', async () => {
    const whole = await handler.handle(request(`/v2/library/app/blobs/${digestOf(layer)}`));
    assert.ok(whole.kind === 'stream');
    assert.equal(whole.length, layer.length);
    await whole.reader.close();
    const part = await handler.handle(
      request(`/v2/library/app/blobs/${digestOf(layer)}`, { range: 'bytes=6-' }),
    );
    assert.ok(part.kind === 'stream');
    assert.equal(part.status, 206);
    assert.equal(header(part.headers, 'Content-Range'), `bytes 6-${layer.length - 1}/${layer.length}`);
    const into = Buffer.alloc(64);
    const n = await part.reader.read(into);
    assert.equal(into.subarray(0, n).toString(), 'bytes');
    await part.reader.close();
  });

  it('streams a blob GET in its own reply, opening the store only for the bytes it sends', async () => {
    let opened = 0;
    class CountingStore extends MemoryStore {
      override open(...args: Parameters<MemoryStore['open']>): ReturnType<MemoryStore['open']> {
        opened++;
        return super.open(...args);
      }
    }
    const counted = new CountingStore();
    await counted.ingest(digestOf(layer), [layer]);
    const counting = new PullHandler({ store: counted, ready: async () => true });
    const path = `/v2/library/app/blobs/${digestOf(layer)}`;
    // HEAD, a miss and an unsatisfiable range are answered without opening anything.
    const head = await counting.handle(request(path, { method: 'HEAD' }));
    assert.equal(head.status, 200);
    await assert.rejects(
      counting.handle(request(`/v2/library/app/blobs/sha256:${'0'.repeat(64)}`)),
      BlobUnknownError,
    );
    await assert.rejects(counting.handle(request(path, { range: 'bytes=99-100' })));
    assert.equal(opened, 0);
    // No redirect: the bytes come in this reply, one open for one GET.
    const served = await counting.handle(request(path, { range: 'bytes=6-' }));
    assert.equal(served.kind, 'stream');
    assert.equal(served.status, 206);
    assert.equal(opened, 1);
    if (served.kind === 'stream') await served.reader.close();
  });

  it('throws coded errors for misses, write methods and other registries', async () => {
    await assert.rejects(handler.handle(request('/v2/library/app/manifests/v2')), ManifestUnknownError);
    await assert.rejects(
      handler.handle(request(`/v2/library/app/blobs/sha256:${'1'.repeat(64)}`)),
      BlobUnknownError,
    );
    await assert.rejects(handler.handle(request('/v2/', { method: 'PUT' })), MethodUnsupportedError);
    const mirrored = new PullHandler({ store, ready: async () => true }, { mirroredRegistries: ['ghcr.io'] });
    await assert.rejects(mirrored.handle(request('/v2/library/app/manifests/v1')), NameUnknownError);
  });

  it('answers HEAD and manifest requests 404 when the store is slower than the hard cap', async () => {
    const slow = new MemoryStore();
    slow.resolve = () => new Promise(() => undefined);
    slow.stat = () => new Promise(() => undefined);
    const capped = new PullHandler({ store: slow, ready: async () => true }, { manifestTimeoutMs: 50 });
    const started = Date.now();
    await assert.rejects(capped.handle(request('/v2/library/app/manifests/v1')), ManifestUnknownError);
    await assert.rejects(
      capped.handle(request(`/v2/library/app/blobs/${digestOf(layer)}`, { method: 'HEAD' })),
      BlobUnknownError,
    );
    assert.ok(Date.now() - started < 1000);
  });

  // Regression (security): anyone who reached the registry port could POST tag invalidations and corrupt
  // reports. Peer notices now travel over the router; the registry port changes nothing.
  it('refuses every method but GET and HEAD, the old peer notice paths included', async () => {
    for (const path of [
      `/_shoal/v1/corrupt/${digestOf(layer)}`,
      '/_shoal/v1/tags/invalidated?name=docker.io/library/app:v1&at=9999999999999',
      '/v2/library/app/manifests/v1',
    ]) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        await assert.rejects(handler.handle(request(path, { method })), MethodUnsupportedError);
      }
    }
    assert.equal((await handler.handle(request('/v2/library/app/manifests/v1'))).status, 200);
  });

  // Regression (security): X-Shoal-Mirrored got a request past --mirrored-registries, --registry-filters
  // and --resolve-tags=false. A peer header now only stops forwarding, and must be proved.
  it('applies filters to peer requests, and refuses a peer claim it cannot prove', async () => {
    const claims: unknown[] = [];
    const filtered = new PullHandler(
      {
        store,
        ready: async () => true,
        authenticate: async (claim) => {
          claims.push(claim);
          if (claim?.id !== 'member') throw new PeerUnauthorizedError('not a member');
          return claim.id;
        },
      },
      { registryFilters: [/:v1$/], resolveTags: true },
    );
    const peer = { id: 'member', time: String(Date.now()), signature: 'x' };
    await assert.rejects(
      filtered.handle(request('/v2/library/app/manifests/v1', { mirrored: true, peer })),
      NameUnknownError,
    );
    const byDigest = `/v2/library/app/manifests/${digestOf(manifest)}`;
    assert.equal((await filtered.handle(request(byDigest, { mirrored: true, peer }))).status, 200);
    await assert.rejects(filtered.handle(request(byDigest, { mirrored: true })), PeerUnauthorizedError);
    await assert.rejects(
      filtered.handle(request(byDigest, { ownerFetch: true, peer: { ...peer, id: 'stranger' } })),
      PeerUnauthorizedError,
    );
    // A node without P2P has no members: any claim is refused, and a plain request is served as always.
    await assert.rejects(handler.handle(request(byDigest, { mirrored: true, peer })), PeerUnauthorizedError);
    assert.equal((await handler.handle(request(byDigest))).status, 200);
    assert.equal(claims.length, 3);
  });

  it('answers tag requests 404 with --resolve-tags=false, and still serves by digest', async () => {
    const digestsOnly = new PullHandler({ store, ready: async () => true }, { resolveTags: false });
    await assert.rejects(digestsOnly.handle(request('/v2/library/app/manifests/v1')), ManifestUnknownError);
    const reply = await digestsOnly.handle(request(`/v2/library/app/manifests/${digestOf(manifest)}`));
    assert.equal(reply.status, 200);
  });

  it('takes the registry from the first path component, and ns over it', async () => {
    await store.tag('ghcr.io', 'owner/app', 'v2', digestOf(manifest));
    const named = await handler.handle(request('/v2/ghcr.io/owner/app/manifests/v2'));
    assert.equal(named.status, 200);
    // The same path with ns: the whole path is the repository, on the registry ns names.
    await assert.rejects(
      handler.handle(request('/v2/ghcr.io/owner/app/manifests/v2', { query: 'ns=docker.io' })),
      ManifestUnknownError,
    );
    // A first component without a dot names no registry: the default one.
    await assert.rejects(handler.handle(request('/v2/owner/app/manifests/v2')), ManifestUnknownError);
    const mirrorsOne = new PullHandler(
      { store, ready: async () => true },
      { mirroredRegistries: ['docker.io'] },
    );
    await assert.rejects(mirrorsOne.handle(request('/v2/ghcr.io/owner/app/manifests/v2')), NameUnknownError);
  });

  it('names a manifest by digest with @ in its error', async () => {
    const absent = `sha256:${'1'.repeat(64)}`;
    await assert.rejects(handler.handle(request(`/v2/library/app/manifests/${absent}`)), (err: Error) =>
      err.message.includes(`library/app@${absent}`),
    );
  });

  it('sends no manifest of a type the Accept header leaves out', async () => {
    const path = '/v2/library/app/manifests/v1';
    const docker = 'application/vnd.docker.distribution.manifest.v2+json';
    await assert.rejects(handler.handle(request(path, { accept: docker })), ManifestUnknownError);
    for (const accept of [undefined, '*/*', `${docker}, ${MEDIA_TYPE_OCI_MANIFEST}`, 'application/json'])
      assert.equal((await handler.handle(request(path, { accept }))).status, 200, String(accept));
  });

  it('lists tags from its discovery, filtered and paged, with a link to the next page', async () => {
    const listing = new PullHandler(
      {
        store,
        ready: async () => true,
        discovery: {
          tags: async () => ({ tags: ['b', 'a', 'secret', 'c'], source: 'local' }),
          referrers: async () => ({ body: Buffer.from('{}'), filtered: false, source: 'local' }),
        },
      },
      { registryFilters: [/:secret$/] },
    );
    const page = await listing.handle(request('/v2/library/app/tags/list', { query: 'n=2' }));
    assert.ok(page.kind === 'full');
    assert.deepEqual(JSON.parse(page.body?.toString() ?? ''), { name: 'library/app', tags: ['a', 'b'] });
    assert.equal(header(page.headers, 'Link'), '</v2/library/app/tags/list?n=2&last=b>; rel="next"');
    const rest = await listing.handle(request('/v2/library/app/tags/list', { query: 'n=2&last=b' }));
    assert.ok(rest.kind === 'full');
    assert.deepEqual(JSON.parse(rest.body?.toString() ?? '').tags, ['c']);
    assert.equal(header(rest.headers, 'Link'), undefined);
    await assert.rejects(
      listing.handle(request('/v2/library/app/tags/list', { query: 'n=lots' })),
      (err: Error & { status?: number }) => err.status === 400,
    );
  });
});
