import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
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
 * are complete (a response counts once its whole body is in). Rejects after `limitMs` (5 s: far below the
 * 10 s a silent server would hold the connection).
 */
function exchange(port: number, bytes: string | Buffer, count: number, limitMs = 5000): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `${count} responses not complete within ${limitMs} ms: ${Buffer.concat(chunks).length} bytes`,
        ),
      );
    }, limitMs);
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

// The registry port at its defaults (a real shoal process): one uWebSockets.js listener serves the whole pull
// API, blob bytes included. Every request below gets its status at once, but for the two that uWS's parser
// leaves unanswered (README, *The registry port*), which are held only until its idle timeout.
describe('the registry port', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let node: ShoalProcess;
  let blob: { digest: string; size: number };
  let manifest: string;

  before(async () => {
    dir = await shortTempDir('shoal-port');
    image = await smallImage('port');
    await importLayout(join(dir, 'data'), image.dir, 'docker.io', 'port/app');
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

  it('answers a TLS handshake with a plain-HTTP status and a close within 1 s', async () => {
    const started = performance.now();
    const [answer] = await exchange(node.port, CLIENT_HELLO, 1);
    assert.ok(performance.now() - started < 1000, 'within 1 s');
    assert.equal(answer?.status, 505);
    assert.equal(answer?.headers.get('connection'), 'close');
  });

  it('gives each malformed or unusual request its status', async () => {
    // [what, bytes, status, whether the body is shoal's OCI error (else uWS's own HTML page)]
    const cases: Array<[string, string | Buffer, number, boolean]> = [
      ['HTTP/1.0', 'GET /v2/ HTTP/1.0\r\n\r\n', 505, false],
      ['no Host', 'GET /v2/ HTTP/1.1\r\n\r\n', 400, false],
      ['absolute-form', 'GET http://127.0.0.1/v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 505, false],
      ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 505, false],
      ['an unknown method', 'FOO /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 501, true],
      ['a lower-case method', 'get /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 501, true],
      ['a WebDAV method', 'PROPFIND /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 405, true],
      ['a write', 'DELETE /v2/port/app/manifests/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 405, true],
      ['HTTP/2.0 in a request line', 'GET /v2/ HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n', 505, false],
      ['HTTP/1.2', 'GET /v2/ HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n', 505, false],
      [
        '40 header fields',
        get('/v2/', Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-field-${i}`, 'v']))),
        200,
        false,
      ],
      ['20 KiB of headers', get('/v2/', { 'x-big': 'a'.repeat(20 << 10) }), 431, true],
      ['a 5 KiB target', get(`/v2/${'a'.repeat(5 << 10)}/manifests/v1`), 414, true],
      ['40 KiB of headers', get('/v2/', { 'x-big': 'a'.repeat(40 << 10) }), 431, false],
    ];
    for (const [name, bytes, status, oci] of cases) {
      const [answer] = await exchange(node.port, bytes, 1);
      assert.equal(answer?.status, status, name);
      if (oci) assert.match(answer?.body.toString() ?? '', /"errors"/, `${name}: an OCI error body`);
    }
  });

  it('closes a connection that pipelines behind an answer still being worked out, and keeps serving', async () => {
    // uWS answers pipelined requests only while each answer is written before the next is parsed; shoal's
    // answers are asynchronous, so a pipelining client loses its connection (README). No client shoal
    // serves pipelines: Go's net/http (containerd, podman, skopeo), curl and browsers send one at a time.
    const bytes = [
      get(`/v2/port/app/manifests/${image.tag}`, { accept: 'application/vnd.oci.image.manifest.v1+json' }),
      get(`/v2/port/app/blobs/${blob.digest}`),
    ].join('');
    const answers = await exchange(node.port, bytes, 2);
    assert.ok(answers.length < 2, 'closed, not answered out of order');
    // One request at a time on a kept-alive connection, as those clients send them.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ports = new Set<number>();
      for (const path of [`/v2/port/app/manifests/${manifest}`, `/v2/port/app/blobs/${blob.digest}`]) {
        const answer = await new Promise<{ status: number; body: Buffer; port: number }>(
          (resolve, reject) => {
            const req = request(`${node.url}${path}`, { agent }, (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (chunk: Buffer) => chunks.push(chunk));
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  body: Buffer.concat(chunks),
                  port: req.socket?.localPort ?? 0,
                }),
              );
            });
            req.on('error', reject);
            req.end();
          },
        );
        assert.equal(answer.status, 200, path);
        assert.equal(sha256(answer.body), path.includes('/blobs/') ? blob.digest : manifest);
        ports.add(answer.port);
      }
      assert.equal(ports.size, 1, 'both answered on one connection');
    } finally {
      agent.destroy();
    }
  });

  it('serves blob bytes and their ranges itself, in one request: no redirect', async () => {
    const path = `/v2/port/app/blobs/${blob.digest}?ns=docker.io`;
    const whole = await rawRequest(node.port, get(path));
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('location'), undefined);
    assert.equal(sha256(whole.body), blob.digest);
    const ranged = await fetch(`${node.url}${path}`, { headers: { range: 'bytes=1-' }, redirect: 'error' });
    assert.equal(ranged.status, 206);
    assert.equal((await ranged.arrayBuffer()).byteLength, blob.size - 1);
    const head = await fetch(`${node.url}${path}`, { method: 'HEAD', redirect: 'error' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(blob.size));
    const miss = await fetch(`${node.url}/v2/port/app/blobs/sha256:${'1'.repeat(64)}`);
    assert.equal(miss.status, 404);
    const bad = await fetch(`${node.url}${path}`, { headers: { range: 'bytes=5-1' } });
    assert.equal(bad.status, 416);
  });

  it('closes a connection whose head never completes, or that sends garbage, within uWS idle timeout', async () => {
    // uWS's parser answers neither: it holds the connection until its own 10 s timeout (README).
    for (const bytes of ['GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'hello\r\n\r\n']) {
      const started = performance.now();
      const answers = await exchange(node.port, bytes, 1, 16_000);
      assert.deepEqual(answers, [], 'no answer');
      const held = performance.now() - started;
      assert.ok(held < 16_000, `closed after ${held} ms`);
    }
  });
});
