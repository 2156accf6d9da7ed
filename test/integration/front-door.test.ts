import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { get, rawRequest } from '../harness/http.js';
import { importLayout, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/** The first bytes of a TLS 1.2 ClientHello, as podman and skopeo send when they try https first. */
const CLIENT_HELLO = Buffer.from('16030100a5010000a10303', 'hex');

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** Parses every response in `data`, in order (bodies by Content-Length). */
function responses(data: Buffer): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? 0);
    if (data.length < end + 4 + length) break;
    out.push({
      status: Number(lines[0]?.split(' ')[1]),
      headers,
      body: data.subarray(end + 4, end + 4 + length),
    });
    at = end + 4 + length;
  }
  return out;
}

/**
 * Writes `bytes` in one write and collects what comes back until the server closes or `count` responses
 * are complete (a response counts once its whole body is in). Rejects after 5 s: far below the 10 s a silent server would hold the connection.
 */
function exchange(port: number, bytes: string | Buffer, count: number): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${count} responses not complete within 5 s: ${Buffer.concat(chunks).length} bytes`));
    }, 5000);
    const check = (closed: boolean): void => {
      const got = responses(Buffer.concat(chunks));
      if (got.length >= count || closed) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      check(false);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => check(true));
    socket.write(bytes);
  });
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

// The registry port at its defaults (a real shoal process): every request the issue listed gets its status
// at once, pipelined requests are answered in order, and blob bytes come from the blob listener by a 307.
describe('the registry port (front door)', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let node: ShoalProcess;
  let blob: { digest: string; size: number };
  let manifest: string;

  before(async () => {
    dir = await shortTempDir('shoal-door');
    image = await smallImage('door');
    await importLayout(join(dir, 'data'), image.dir, 'docker.io', 'door/app');
    node = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'data')]);
    await node.start();
    const layer = image.image.layers[0];
    assert.ok(layer !== undefined);
    blob = layer;
    manifest = image.image.manifest.digest;
  });

  after(async () => {
    await node?.stop();
    await removeDir(dir);
  });

  it('answers a TLS handshake with a plain-HTTP 400 and a close, at once', async () => {
    const [answer] = await exchange(node.port, CLIENT_HELLO, 1);
    assert.equal(answer?.status, 400);
    assert.equal(answer?.headers.get('connection'), 'close');
    assert.match(answer?.body.toString() ?? '', /plain HTTP/);
  });

  it('gives each malformed or unusual request its status', async () => {
    const cases: Array<[string, string | Buffer, number]> = [
      ['HTTP/1.0', 'GET /v2/ HTTP/1.0\r\n\r\n', 200],
      ['no Host', 'GET /v2/ HTTP/1.1\r\n\r\n', 400],
      ['absolute-form', 'GET http://127.0.0.1/v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 200],
      ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 405],
      ['an unknown method', 'FOO /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 501],
      ['a WebDAV method', 'PROPFIND /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 405],
      ['HTTP/2.0 in a request line', 'GET /v2/ HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n', 505],
      ['HTTP/1.2', 'GET /v2/ HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n', 505],
      [
        '60 header fields',
        get('/v2/', Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x-field-${i}`, 'v']))),
        200,
      ],
      ['20 KiB of headers', get('/v2/', { 'x-big': 'a'.repeat(20 << 10) }), 431],
      ['a 5 KiB target', get(`/v2/${'a'.repeat(5 << 10)}/manifests/v1`), 414],
      ['garbage', 'hello\r\n\r\n', 400],
    ];
    for (const [name, bytes, status] of cases) {
      const [answer] = await exchange(node.port, bytes, 1);
      assert.equal(answer?.status, status, name);
      if (status >= 400)
        assert.match(answer?.body.toString() ?? '', /"errors"/, `${name}: an OCI error body`);
    }
  });

  it('answers pipelined requests in order, a blob GET among them', async () => {
    const blobPath = `/v2/door/app/blobs/${blob.digest}`;
    const bytes = [
      get(`/v2/door/app/manifests/${image.tag}`, { accept: 'application/vnd.oci.image.manifest.v1+json' }),
      get(blobPath),
      get(`/v2/door/app/blobs/sha256:${'0'.repeat(64)}`),
      get(`/v2/door/app/manifests/${manifest}`),
    ].join('');
    const answers = await exchange(node.port, bytes, 4);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 307, 404, 200],
    );
    assert.equal(sha256(answers[0]?.body ?? Buffer.alloc(0)), manifest);
    assert.equal(answers[1]?.headers.get('location'), `http://127.0.0.1:${node.blobPort}${blobPath}`);
    assert.equal(sha256(answers[3]?.body ?? Buffer.alloc(0)), manifest);
  });

  it('redirects a blob GET to the blob listener, which serves the bytes and their ranges', async () => {
    const path = `/v2/door/app/blobs/${blob.digest}?ns=docker.io`;
    const redirect = await rawRequest(node.port, get(path, { range: 'bytes=1-' }));
    assert.equal(redirect.status, 307);
    const location = redirect.headers.get('location') ?? '';
    assert.equal(location, `http://127.0.0.1:${node.blobPort}${path}`, 'path and ns kept');
    const followed = await fetch(`${node.url}${path}`);
    assert.equal(followed.status, 200);
    assert.equal(sha256(Buffer.from(await followed.arrayBuffer())), blob.digest);
    const ranged = await fetch(`${node.url}${path}`, { headers: { range: 'bytes=1-' } });
    assert.equal(ranged.status, 206);
    assert.equal((await ranged.arrayBuffer()).byteLength, blob.size - 1);
    // HEAD, a miss and a bad range are answered on the registry port itself.
    const head = await fetch(`${node.url}${path}`, { method: 'HEAD', redirect: 'manual' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(blob.size));
    const miss = await fetch(`${node.url}/v2/door/app/blobs/sha256:${'1'.repeat(64)}`, {
      redirect: 'manual',
    });
    assert.equal(miss.status, 404);
    const bad = await fetch(`${node.url}${path}`, { headers: { range: 'bytes=5-1' }, redirect: 'manual' });
    assert.equal(bad.status, 416);
  });

  it('answers 408 to a head that does not arrive within --idle-timeout', async () => {
    const slow = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(dir, 'slow'),
      // 1 s instead of the default 30 s only to keep the suite short: waiting out the default would add
      // 30 s per run and prove nothing more. The cases above run at the default.
      '--idle-timeout',
      '1s',
    ]);
    await slow.start();
    try {
      const started = performance.now();
      const [answer] = await exchange(slow.port, 'GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n', 1);
      assert.equal(answer?.status, 408);
      assert.ok(performance.now() - started >= 900, 'not before the timeout');
    } finally {
      await slow.stop();
    }
  });

  it('builds the redirect from the Host the client used, never from a forged one', async () => {
    const path = `/v2/door/app/blobs/${blob.digest}`;
    const named = await rawRequest(node.port, `GET ${path} HTTP/1.1\r\nHost: localhost:${node.port}\r\n\r\n`);
    assert.equal(named.headers.get('location'), `http://localhost:${node.blobPort}${path}`);
    const forged = await rawRequest(node.port, `GET ${path} HTTP/1.1\r\nHost: a b/c\r\n\r\n`);
    assert.ok([307, 400].includes(forged.status));
    if (forged.status === 307)
      assert.equal(forged.headers.get('location'), `http://127.0.0.1:${node.blobPort}${path}`);
    const old = await rawRequest(node.port, `GET ${path} HTTP/1.0\r\n\r\n`);
    assert.equal(old.headers.get('location'), `http://127.0.0.1:${node.blobPort}${path}`);
  });
});
