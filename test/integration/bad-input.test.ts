import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MemoryStore } from '../../src/main/store/memory.js';
import { importOciLayout } from '../../src/main/store/oci-layout.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { get, rawRequest, startRegistry } from '../harness/http.js';

const HEX = 'e'.repeat(64);

interface Case {
  name: string;
  request: () => string;
  status: number;
  code: string;
}

describe('bad input gets a 4xx with an OCI error body, and the server keeps serving', () => {
  let port: number;
  let stop: () => Promise<void>;
  let small: SingleImageFixture;
  const blob = () => `/v2/app/blobs/${small.image.layers[0]?.digest}`;
  const size = () => small.image.layers[0]?.size ?? 0;

  before(async () => {
    small = await smallImage('bad-input');
    const store = new MemoryStore();
    await importOciLayout(store, small.dir, { registry: 'docker.io', repository: 'app' });
    ({ port, stop } = await startRegistry(store));
  });
  after(() => stop());

  const cases: Case[] = [
    {
      name: 'path traversal outside /v2 names',
      request: () => get('/v2/../etc/passwd'),
      status: 404,
      code: 'UNSUPPORTED',
    },
    {
      name: 'traversal inside a name',
      request: () => get('/v2/a/../../manifests/latest'),
      status: 404,
      code: 'NAME_UNKNOWN',
    },
    {
      name: 'percent-encoded slash',
      request: () => get('/v2/a%2Fb/manifests/latest'),
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'percent-encoded dot-dot',
      request: () => get('/v2/%2e%2e/manifests/latest'),
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'uppercase name',
      request: () => get('/v2/UPPER/manifests/latest'),
      status: 404,
      code: 'NAME_UNKNOWN',
    },
    {
      name: 'empty name component',
      request: () => get('/v2/a//b/manifests/latest'),
      status: 404,
      code: 'NAME_UNKNOWN',
    },
    {
      name: 'name of 300 characters',
      request: () => get(`/v2/${'a'.repeat(300)}/manifests/latest`),
      status: 404,
      code: 'NAME_UNKNOWN',
    },
    { name: 'empty tag', request: () => get('/v2/a/manifests/'), status: 404, code: 'MANIFEST_UNKNOWN' },
    {
      name: 'tag starting with a dot',
      request: () => get('/v2/a/manifests/.bad'),
      status: 404,
      code: 'MANIFEST_UNKNOWN',
    },
    {
      name: 'tag of 200 characters',
      request: () => get(`/v2/a/manifests/${'t'.repeat(200)}`),
      status: 404,
      code: 'MANIFEST_UNKNOWN',
    },
    {
      name: 'short digest',
      request: () => get('/v2/a/manifests/sha256:abc'),
      status: 400,
      code: 'DIGEST_INVALID',
    },
    {
      name: 'uppercase digest',
      request: () => get(`/v2/a/blobs/sha256:${'A'.repeat(64)}`),
      status: 400,
      code: 'DIGEST_INVALID',
    },
    {
      name: 'unknown digest algorithm',
      request: () => get(`/v2/a/blobs/md5:${'a'.repeat(32)}`),
      status: 400,
      code: 'DIGEST_INVALID',
    },
    { name: 'not a digest', request: () => get('/v2/a/blobs/latest'), status: 400, code: 'DIGEST_INVALID' },
    {
      name: 'digest followed by a path',
      request: () => get(`/v2/a/blobs/sha256:${HEX}/../x`),
      status: 400,
      code: 'DIGEST_INVALID',
    },
    { name: 'empty digest', request: () => get('/v2/a/blobs/'), status: 400, code: 'DIGEST_INVALID' },
    {
      name: 'reversed range',
      request: () => get(blob(), { Range: 'bytes=5-2' }),
      status: 416,
      code: 'RANGE_INVALID',
    },
    {
      name: 'range past the end',
      request: () => get(blob(), { Range: `bytes=${size()}-` }),
      status: 416,
      code: 'RANGE_INVALID',
    },
    {
      name: 'empty suffix range',
      request: () => get(blob(), { Range: 'bytes=-0' }),
      status: 416,
      code: 'RANGE_INVALID',
    },
    {
      name: 'POST an upload',
      request: () => get('/v2/a/blobs/uploads/', {}, 'POST'),
      status: 405,
      code: 'UNSUPPORTED',
    },
    {
      name: 'PUT a manifest',
      request: () => get('/v2/a/manifests/latest', { 'Content-Length': '0' }, 'PUT'),
      status: 405,
      code: 'UNSUPPORTED',
    },
    {
      name: 'DELETE a blob',
      request: () => get(`/v2/a/blobs/sha256:${HEX}`, {}, 'DELETE'),
      status: 405,
      code: 'UNSUPPORTED',
    },
    {
      name: 'PATCH an upload',
      request: () => get('/v2/a/blobs/uploads/x', {}, 'PATCH'),
      status: 405,
      code: 'UNSUPPORTED',
    },
    { name: 'OPTIONS', request: () => get('/v2/', {}, 'OPTIONS'), status: 405, code: 'UNSUPPORTED' },
    {
      name: 'ns with a space',
      request: () => get('/v2/a/manifests/latest?ns=bad%20host'),
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'ns with a bad port',
      request: () => get('/v2/a/manifests/latest?ns=host:99999'),
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'ns that is a URL',
      request: () => get('/v2/a/manifests/latest?ns=http://x'),
      status: 400,
      code: 'NAME_INVALID',
    },
    {
      name: 'request target over 4 KiB',
      request: () => get(`/v2/a/manifests/latest?ns=docker.io&pad=${'p'.repeat(5000)}`),
      status: 414,
      code: 'UNSUPPORTED',
    },
    {
      name: 'headers over 16 KiB',
      request: () => get('/v2/', { 'X-Pad': 'h'.repeat(20_000) }),
      status: 431,
      code: 'UNSUPPORTED',
    },
    { name: 'the v1 API', request: () => get('/v1/_ping'), status: 404, code: 'UNSUPPORTED' },
    {
      name: 'tag listing of a repository nothing is known of',
      request: () => get('/v2/nothing/here/tags/list'),
      status: 404,
      code: 'NAME_UNKNOWN',
    },
    {
      name: 'upload status GET',
      request: () => get('/v2/a/blobs/uploads/abc'),
      status: 404,
      code: 'UNSUPPORTED',
    },
    {
      name: 'a sha512 blob (only sha256 content is served)',
      request: () => get(`/v2/a/blobs/sha512:${'a'.repeat(128)}`),
      status: 404,
      code: 'BLOB_UNKNOWN',
    },
    {
      name: 'a valid but absent sha512 manifest',
      request: () => get(`/v2/a/manifests/sha512:${'a'.repeat(128)}`),
      status: 404,
      code: 'MANIFEST_UNKNOWN',
    },
  ];

  it('has a table of at least 30 cases', () => assert.ok(cases.length >= 30));

  // RFC 9110 §14.2: a unit other than bytes must be ignored, and a server may ignore any Range; shoal sends
  // the whole body (200) for what it does not serve as one range, never an error.
  for (const range of ['bytes=0-1,5-6', 'bytes=abc', 'items=0-1', 'bytes=99999999999999999999-', 'bytes=-']) {
    it(`ignores Range: ${range} and sends the whole blob`, async () => {
      const response = await rawRequest(port, get(blob(), { Range: range }));
      assert.equal(response.status, 200);
      assert.equal(response.body.length, size());
      assert.equal(response.headers.get('content-range'), undefined);
    });
  }

  for (const testCase of cases) {
    it(`${testCase.name} → ${testCase.status} ${testCase.code}`, async () => {
      const response = await rawRequest(port, testCase.request());
      assert.equal(response.status, testCase.status);
      assert.equal(response.headers.get('content-type'), 'application/json');
      const body = JSON.parse(response.body.toString('utf8')) as {
        errors: Array<{ code: string; message: string }>;
      };
      assert.equal(body.errors[0]?.code, testCase.code);
      assert.ok((body.errors[0]?.message.length ?? 0) > 0, 'the error says what is wrong');
    });
  }

  it('answers HEAD errors with the status and no body', async () => {
    const response = await rawRequest(port, get('/v2/a/manifests/missing', {}, 'HEAD'), { head: true });
    assert.equal(response.status, 404);
    assert.equal(response.body.length, 0);
  });

  it('survives a garbage request line and a half-sent request', async () => {
    await rawRequest(port, 'GARBAGE\r\n\r\n', { timeoutMs: 2000 }).catch(() => undefined);
    const half = connect(port, '127.0.0.1');
    half.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    half.destroy();
  });

  it('still serves after all of it', async () => {
    const response = await rawRequest(port, get(`${blob()}?ns=docker.io`));
    assert.equal(response.status, 200);
    assert.equal(response.body.length, size());
  });
});
