import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

/** What a registry under test holds: one repository with a single image and a multi-arch index. */
export interface PullTarget {
  /** `http://host:port` of the registry. */
  url: string;
  /** The repository as the client names it in the path. */
  repository: string;
  /** Appended to every request (`ns=127.0.0.1:5000`), or ''. */
  query: string;
  /** A tag of a single-platform OCI manifest, its digest and one of its layers. */
  tag: string;
  manifestDigest: string;
  blob: { digest: string; size: number };
  /** A tag of an OCI index. */
  indexTag: string;
  /** Every tag the repository holds. */
  tags: readonly string[];
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const ALL_MANIFESTS = [
  OCI_MANIFEST,
  OCI_INDEX,
  DOCKER_MANIFEST,
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');
const ABSENT = `sha256:${'0'.repeat(64)}`;

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function call(
  target: PullTarget,
  path: string,
  init: { method?: string; headers?: Record<string, string>; query?: string } = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const query = [init.query ?? '', target.query].filter((part) => part !== '').join('&');
  const response = await fetch(`${target.url}${path}${query === '' ? '' : `?${query}`}`, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    // The spec lets a registry answer a blob GET with a redirect (shoal's registry port sends 307 to its blob
    // listener), and the spec's own conformance client follows it, Range included.
    redirect: 'follow',
  });
  return {
    status: response.status,
    headers: response.headers,
    body: Buffer.from(await response.arrayBuffer()),
  };
}

function assertErrorBody(body: Buffer, codes: readonly string[]): void {
  const doc = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
  assert.ok(Array.isArray(doc.errors) && doc.errors.length > 0, 'an errors array');
  assert.ok(codes.includes(doc.errors[0]?.code ?? ''), `code ${doc.errors[0]?.code} in ${codes.join('|')}`);
}

/**
 * The checks the OCI distribution spec (v1.1) makes of a read-only registry in its pull and content
 * discovery sections, written from the spec's text and its status-code tables: the same set the upstream
 * conformance suite runs with OCI_API_PUSH off, plus the bodies it does not check.
 */
export function ociPullConformance(name: string, setup: () => PullTarget): void {
  describe(`OCI distribution pull conformance: ${name}`, () => {
    const t = () => setup();
    const manifests = () => `/v2/${t().repository}/manifests`;
    const blobs = () => `/v2/${t().repository}/blobs`;

    it('GET /v2/ answers 200', async () => {
      const r = await call(t(), '/v2/');
      assert.equal(r.status, 200);
    });

    it('pulls a manifest by tag: 200, its media type, a digest header that matches the body', async () => {
      const r = await call(t(), `${manifests()}/${t().tag}`, { headers: { accept: ALL_MANIFESTS } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(sha256(r.body), t().manifestDigest);
      assert.equal(r.headers.get('docker-content-digest'), t().manifestDigest);
      assert.equal(Number(r.headers.get('content-length')), r.body.length);
    });

    it('HEADs a manifest by tag and by digest: 200, the length and digest, no body', async () => {
      for (const reference of [t().tag, t().manifestDigest]) {
        const r = await call(t(), `${manifests()}/${reference}`, {
          method: 'HEAD',
          headers: { accept: ALL_MANIFESTS },
        });
        assert.equal(r.status, 200, reference);
        assert.equal(r.headers.get('docker-content-digest'), t().manifestDigest);
        assert.ok(Number(r.headers.get('content-length')) > 0);
        assert.equal(r.body.length, 0);
      }
    });

    it('pulls a manifest by digest', async () => {
      const r = await call(t(), `${manifests()}/${t().manifestDigest}`, {
        headers: { accept: ALL_MANIFESTS },
      });
      assert.equal(r.status, 200);
      assert.equal(sha256(r.body), t().manifestDigest);
    });

    it('pulls an index by tag, and its child manifests by digest', async () => {
      const r = await call(t(), `${manifests()}/${t().indexTag}`, { headers: { accept: ALL_MANIFESTS } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), OCI_INDEX);
      const index = JSON.parse(r.body.toString('utf8')) as { manifests: Array<{ digest: string }> };
      assert.ok(index.manifests.length >= 2);
      for (const child of index.manifests) {
        const c = await call(t(), `${manifests()}/${child.digest}`, { headers: { accept: ALL_MANIFESTS } });
        assert.equal(c.status, 200);
        assert.equal(sha256(c.body), child.digest);
      }
    });

    it('does not send an index to a client that accepts only Docker v2 manifests: 404', async () => {
      const r = await call(t(), `${manifests()}/${t().indexTag}`, { headers: { accept: DOCKER_MANIFEST } });
      assert.equal(r.status, 404);
      assertErrorBody(r.body, ['MANIFEST_UNKNOWN']);
    });

    it('answers an absent tag and an absent digest 404 MANIFEST_UNKNOWN', async () => {
      for (const reference of ['no-such-tag', ABSENT]) {
        const r = await call(t(), `${manifests()}/${reference}`);
        assert.equal(r.status, 404, reference);
        assertErrorBody(r.body, ['MANIFEST_UNKNOWN']);
      }
    });

    it('answers an invalid manifest reference 404 (the spec’s .INVALID_MANIFEST_NAME)', async () => {
      const r = await call(t(), `${manifests()}/.INVALID_MANIFEST_NAME`);
      assert.equal(r.status, 404);
      assertErrorBody(r.body, ['MANIFEST_UNKNOWN', 'MANIFEST_INVALID', 'NAME_UNKNOWN', 'TAG_INVALID']);
    });

    it('pulls a blob: 200, the bytes of its digest', async () => {
      const r = await call(t(), `${blobs()}/${t().blob.digest}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.length, t().blob.size);
      assert.equal(sha256(r.body), t().blob.digest);
    });

    it('HEADs a blob: 200 and its length, no body', async () => {
      const r = await call(t(), `${blobs()}/${t().blob.digest}`, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(Number(r.headers.get('content-length')), t().blob.size);
      assert.equal(r.body.length, 0);
    });

    it('answers an absent blob 404 BLOB_UNKNOWN', async () => {
      const r = await call(t(), `${blobs()}/${ABSENT}`);
      assert.equal(r.status, 404);
      assertErrorBody(r.body, ['BLOB_UNKNOWN']);
    });

    it('serves a byte range of a blob: 206 and its Content-Range', async () => {
      const r = await call(t(), `${blobs()}/${t().blob.digest}`, { headers: { range: 'bytes=10-19' } });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes 10-19/${t().blob.size}`);
      assert.equal(r.body.length, 10);
    });

    it('answers a range that ends before it starts 416 (or the whole blob)', async () => {
      const r = await call(t(), `${blobs()}/${t().blob.digest}`, { headers: { range: 'bytes=500-0' } });
      assert.ok([416, 200].includes(r.status), `status ${r.status}`);
      if (r.status === 416) assert.equal(r.headers.get('content-range'), `bytes */${t().blob.size}`);
    });

    it('ignores a Range in another unit, and a Range on HEAD: 200', async () => {
      const other = await call(t(), `${blobs()}/${t().blob.digest}`, { headers: { range: 'items=0-5' } });
      assert.equal(other.status, 200);
      assert.equal(other.body.length, t().blob.size);
      const head = await call(t(), `${blobs()}/${t().blob.digest}`, {
        method: 'HEAD',
        headers: { range: 'bytes=0-9' },
      });
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers.get('content-length')), t().blob.size);
    });

    it('lists tags: 200, the repository name and every tag, in lexical order', async () => {
      const r = await call(t(), `/v2/${t().repository}/tags/list`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      const doc = JSON.parse(r.body.toString('utf8')) as { name: string; tags: string[] };
      assert.equal(doc.name, t().repository);
      assert.deepEqual(doc.tags, [...t().tags].sort());
    });

    it('pages the tag list with n and last, and links the next page', async () => {
      const sorted = [...t().tags].sort();
      const first = await call(t(), `/v2/${t().repository}/tags/list`, { query: 'n=1' });
      assert.equal(first.status, 200);
      assert.deepEqual(
        (JSON.parse(first.body.toString('utf8')) as { tags: string[] }).tags,
        sorted.slice(0, 1),
      );
      assert.match(first.headers.get('link') ?? '', /rel="next"/);
      const next = await call(t(), `/v2/${t().repository}/tags/list`, {
        query: `n=10&last=${encodeURIComponent(sorted[0] as string)}`,
      });
      assert.equal(next.status, 200);
      assert.deepEqual((JSON.parse(next.body.toString('utf8')) as { tags: string[] }).tags, sorted.slice(1));
      const none = await call(t(), `/v2/${t().repository}/tags/list`, { query: 'n=0' });
      assert.equal(none.status, 200);
      assert.deepEqual((JSON.parse(none.body.toString('utf8')) as { tags: string[] }).tags, []);
    });

    it('answers the tag list of an unknown repository 404 NAME_UNKNOWN', async () => {
      const r = await call(t(), '/v2/no/such/repository/tags/list');
      assert.equal(r.status, 404);
      assertErrorBody(r.body, ['NAME_UNKNOWN']);
    });

    it('answers referrers with an image index, filtered by artifactType when asked', async () => {
      const r = await call(t(), `/v2/${t().repository}/referrers/${t().manifestDigest}`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), OCI_INDEX);
      const index = JSON.parse(r.body.toString('utf8')) as {
        schemaVersion: number;
        mediaType: string;
        manifests: unknown[];
      };
      assert.equal(index.schemaVersion, 2);
      assert.equal(index.mediaType, OCI_INDEX);
      assert.ok(Array.isArray(index.manifests));
      const filtered = await call(t(), `/v2/${t().repository}/referrers/${t().manifestDigest}`, {
        query: 'artifactType=application%2Fvnd.example.sbom',
      });
      assert.equal(filtered.status, 200);
      assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    });

    it('answers a referrers request with a malformed digest 400', async () => {
      const r = await call(t(), `/v2/${t().repository}/referrers/sha256:nothex`);
      assert.equal(r.status, 400);
      assertErrorBody(r.body, ['DIGEST_INVALID']);
    });
  });
}
