import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { contentOf, type GuardedPullThrough, startGuardedPullThrough } from '../harness/lying-upstream.js';
import { seededRandom } from '../harness/random.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const REQUESTS = 10_000;
const CONCURRENCY = 16;
const SEED = 0x5_0a1;
/** Methods no HTTP parser knows: 501 Not Implemented, as Go's and nginx's servers answer. */
const UNKNOWN_METHODS = new Set(['FOO']);

interface Hostile {
  method: string;
  path: string;
  headers: Record<string, string>;
}

/** Builds requests the way an attacker on the pod network would: every part from a list of bad ideas. */
function hostileRequests(
  random: () => number,
  hosts: { upstream: string; forbidden: string[] },
  known: { blob: string; manifest: string },
): () => Hostile {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const digests = [
    known.blob,
    known.manifest,
    `sha256:${'0'.repeat(64)}`,
    'sha256:zz',
    `sha512:${'a'.repeat(128)}`,
    '',
  ];
  const repos = [
    'lie/none',
    'a',
    'A/B',
    '..%2f..%2fetc',
    '%2e%2e/x',
    'x'.repeat(300),
    'a/b/c/d',
    '',
    'lie/none%00',
    'a%20b',
  ];
  const refs = ['v1', 'latest', ...digests, '.INVALID', 'x'.repeat(200), '%2F'];
  const nsValues = [
    hosts.upstream,
    hosts.upstream,
    ...hosts.forbidden,
    '169.254.169.254',
    'docker.io',
    'ghcr.io',
    '',
    'http://x',
    'user@127.0.0.1',
    '127.0.0.1/path',
    '%00',
    'a'.repeat(300),
    'does-not-exist.invalid',
    `${hosts.upstream}@127.0.0.2`,
  ];
  const paths = [
    () => `/v2/${pick(repos)}/manifests/${pick(refs)}`,
    () => `/v2/${pick(repos)}/blobs/${pick(digests)}`,
    () => `/v2/${pick(repos)}/tags/list`,
    () => `/v2/${pick(repos)}/referrers/${pick(digests)}`,
    () => pick(['/v2/', '/v2', '/', '/livez', '/readyz', '/metrics', '/_shoal/v1/admin/invalidate']),
    () => pick(['/_shoal/v1/tags/invalidated', `/_shoal/v1/corrupt/${pick(digests)}`]),
    () => `/v2/lie/none/blobs/${known.blob}`,
  ];
  const queries = [
    () => '',
    () => `?ns=${encodeURIComponent(pick(nsValues))}`,
    () => `?ns=${encodeURIComponent(pick(nsValues))}&ns=${encodeURIComponent(pick(nsValues))}`,
    () => `?ns=${pick(nsValues).replace(/[^\x21-\x7e]/g, '')}`,
    () => '?a=%ZZ&name=docker.io/x:y&at=9999999999999',
  ];
  const ranges = [
    'bytes=0-0',
    'bytes=-1',
    'bytes=5-',
    'bytes=999999999999-',
    'bytes=1-0',
    'items=0-5',
    'bytes=0-1,2-3',
    'garbage',
    'bytes=-0',
    `bytes=0-${'9'.repeat(30)}`,
  ];
  const methods = [
    'GET',
    'GET',
    'GET',
    'GET',
    'HEAD',
    'HEAD',
    'POST',
    'PUT',
    'DELETE',
    'PATCH',
    'OPTIONS',
    'TRACE',
    'PROPFIND',
    'FOO',
  ];
  return () => {
    const headers: Record<string, string> = {};
    if (random() < 0.3) headers.range = pick(ranges);
    if (random() < 0.15) headers['x-shoal-mirrored'] = pick(['true', 'false', '1']);
    if (random() < 0.1) headers['x-shoal-owner-fetch'] = 'true';
    if (random() < 0.1) {
      headers['x-shoal-peer'] = pick(['12D3KooWGarbage', 'x'.repeat(200), '']);
      headers['x-shoal-peer-time'] = String(Date.now());
      headers['x-shoal-peer-signature'] = 'AAAA';
    }
    if (random() < 0.2)
      headers.accept = pick(['*/*', 'application/vnd.docker.distribution.manifest.v2+json', 'text/html']);
    const path = (pick(paths)() + pick(queries)()).replace(/[^\x21-\x7e]/g, '');
    return { method: pick(methods), path, headers };
  };
}

function send(agent: Agent, url: string, hostile: Hostile): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      `${url}${hostile.path}`,
      { method: hostile.method, headers: hostile.headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          if (kept < 2048) chunks.push(chunk);
          kept += chunk.length;
        });
        res.on('error', () => undefined);
        res.on('close', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8', 0, 2048) }),
        );
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error('no answer in 20 s')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end();
  });
}

// Regression (security): 10,000 generated requests (paths, methods, headers, ns values, ranges, peer
// claims) against a node with pull-through on. No 5xx but 503 "upstream unavailable", no connection to any
// address but the named registry (listeners count them), and the node serves as before afterwards. The
// seed is fixed, so a failure is replayed exactly.
describe('hostile requests against a pull-through node', { timeout: 300_000 }, () => {
  let dir: string;
  let guarded: GuardedPullThrough;
  const blob = contentOf(createHash('sha256').update('hostile').digest());
  const manifest = contentOf(
    Buffer.from('{"schemaVersion":2,"layers":[]}'),
    'application/vnd.oci.image.manifest.v1+json',
  );

  before(async () => {
    dir = await shortTempDir('shoal-hostile');
    const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
    guarded = await startGuardedPullThrough(join(dir, 'data'), [[blob], [manifest, 'v1']], hosts);
  });
  after(async () => {
    await guarded?.stop();
    await removeDir(dir);
  });

  it(`answers ${REQUESTS} hostile requests without a 5xx, a crash or a connection it was not told to make`, async (t) => {
    const { upstream, listeners, node } = guarded;
    const forbidden = listeners.flatMap((listener) => [
      `${listener.host}:${listener.port}`,
      `localhost:${listener.port}`,
      `[::1]:${listener.port}`,
    ]);
    const next = hostileRequests(
      seededRandom(SEED),
      { upstream: upstream.host, forbidden },
      {
        blob: blob.digest,
        manifest: manifest.digest,
      },
    );
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let sent = 0;
    const started = performance.now();
    const worker = async (): Promise<void> => {
      while (sent < REQUESTS) {
        sent++;
        const hostile = next();
        const { status, body } = await send(agent, node.url, hostile);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const unavailable = status === 503 && body.includes('"upstream unavailable"');
        // Every request gets a status; the only 5xx are 503 "upstream unavailable" and 501 for FOO.
        const unimplemented = status === 501 && UNKNOWN_METHODS.has(hostile.method);
        if (status === 0 || (status >= 500 && !unavailable && !unimplemented)) {
          failures.push(
            `${hostile.method} ${hostile.path} ${JSON.stringify(hostile.headers)} → ${status} ${body.slice(0, 300)}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(
      `${REQUESTS} requests in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    assert.deepEqual(failures.slice(0, 10), []);
    assert.deepEqual(
      listeners.map((listener) => listener.connections),
      [0, 0, 0],
      'no connection to an address the operator did not name',
    );
    assert.equal((await fetch(`${node.url}/livez`)).status, 200);
    const honest = await fetch(`${node.url}/v2/lie/none/blobs/${blob.digest}?ns=${upstream.host}`);
    assert.equal(honest.status, 200);
    assert.equal(
      `sha256:${createHash('sha256')
        .update(Buffer.from(await honest.arrayBuffer()))
        .digest('hex')}`,
      blob.digest,
    );
  });
});
