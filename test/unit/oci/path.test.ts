import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BlobUnknownError,
  DigestInvalidError,
  ManifestUnknownError,
  NameInvalidError,
  NameUnknownError,
  RouteUnknownError,
} from '../../../src/main/errors.js';
import { parsePullPath } from '../../../src/main/oci/path.js';

const DIGEST = `sha256:${'c'.repeat(64)}`;

describe('parsePullPath', () => {
  it('recognises the ping', () => {
    assert.deepEqual(parsePullPath('/v2/'), { kind: 'ping' });
    assert.deepEqual(parsePullPath('/v2'), { kind: 'ping' });
  });

  it('parses manifests by tag and digest, with nested names', () => {
    assert.deepEqual(parsePullPath('/v2/library/nginx/manifests/latest'), {
      kind: 'manifest',
      repository: 'library/nginx',
      tag: 'latest',
    });
    assert.deepEqual(parsePullPath(`/v2/a/b/c/manifests/${DIGEST}`), {
      kind: 'manifest',
      repository: 'a/b/c',
      digest: DIGEST,
    });
  });

  it('parses blobs', () => {
    assert.deepEqual(parsePullPath(`/v2/x/blobs/${DIGEST}`), {
      kind: 'blob',
      repository: 'x',
      digest: DIGEST,
    });
  });

  it('parses tag lists and referrers', () => {
    assert.deepEqual(parsePullPath('/v2/ghcr.io/owner/app/tags/list'), {
      kind: 'tags',
      repository: 'ghcr.io/owner/app',
    });
    assert.deepEqual(parsePullPath(`/v2/a/b/referrers/${DIGEST}`), {
      kind: 'referrers',
      repository: 'a/b',
      digest: DIGEST,
    });
  });

  it('uses the last /manifests/ so a repository may be named manifests', () => {
    assert.deepEqual(parsePullPath('/v2/manifests/manifests/v1'), {
      kind: 'manifest',
      repository: 'manifests',
      tag: 'v1',
    });
  });

  const cases: Array<[string, new (...args: never[]) => Error]> = [
    ['/v1/x', RouteUnknownError],
    ['/v2/x/blobs/uploads/', RouteUnknownError],
    ['/v2/../etc/manifests/latest', NameUnknownError],
    ['/v2/a%2Fb/manifests/latest', NameInvalidError],
    ['/v2/x/manifests/', ManifestUnknownError],
    ['/v2/x/manifests/-bad', ManifestUnknownError],
    [`/v2/x/blobs/sha512:${'a'.repeat(128)}`, BlobUnknownError],
    ['/v2/x/blobs/sha256:zz', DigestInvalidError],
    [`/v2/x/manifests/${DIGEST}/extra`, DigestInvalidError],
    ['/v2/UPPER/blobs/sha256:00', NameUnknownError],
  ];
  for (const [path, error] of cases) {
    it(`rejects ${path.slice(0, 40)} with ${error.name}`, () =>
      assert.throws(() => parsePullPath(path), error));
  }
});
