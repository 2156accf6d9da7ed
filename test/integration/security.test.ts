import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MEDIA_TYPE_OCI_MANIFEST } from '../../src/main/oci/media-types.js';
import { smallImage } from '../harness/fixtures.js';
import {
  type CountingListener,
  contentOf,
  type GuardedPullThrough,
  type Lie,
  type LyingUpstream,
  startGuardedPullThrough,
} from '../harness/lying-upstream.js';
import { Child } from '../harness/process.js';
import { CLI, importLayout, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/** What a client got: status, bytes, and whether the body ended as its headers promised. */
interface Outcome {
  status: number;
  complete: boolean;
  sha256: string;
  length: number;
  body: string;
}

/** A GET or HEAD as containerd sends it (a redirect is followed, as containerd would). */
function fetchOutcome(
  url: string,
  init: { method?: string; headers?: Record<string, string> } = {},
  hops = 0,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: init.method ?? 'GET', headers: init.headers ?? {}, agent: false },
      (res) => {
        const location = res.headers.location;
        if (res.statusCode === 307 && location !== undefined && hops < 5) {
          res.resume();
          fetchOutcome(new URL(location, url).toString(), init, hops + 1).then(resolve, reject);
          return;
        }
        const hash = createHash('sha256');
        const head: Buffer[] = [];
        let length = 0;
        let complete = false;
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          if (length < 4096) head.push(chunk);
          length += chunk.length;
        });
        res.on('end', () => {
          complete = res.complete;
        });
        res.on('error', () => undefined);
        res.on('close', () =>
          resolve({
            status: res.statusCode ?? 0,
            complete,
            sha256: `sha256:${hash.digest('hex')}`,
            length,
            body: Buffer.concat(head).toString('utf8').slice(0, 4096),
          }),
        );
      },
    );
    let timedOut = false;
    req.setTimeout(30_000, () => {
      timedOut = true;
      req.destroy(new Error('no answer in 30 s'));
    });
    // A connection cut before any answer is an outcome too: nothing was completed.
    req.on('error', (err) => {
      if (timedOut) reject(err);
      else resolve({ status: 0, complete: false, sha256: '', length: 0, body: err.message });
    });
    req.end();
  });
}

const NS = 'docker.io';

// Regression tests for the security review, each against real shoal processes. Every one of them failed on
// the code before the review's changes: the registry port took state-changing POSTs, a header bypassed the
// filters, pull-through connected wherever `?ns=` pointed, and a lying HEAD completed a wrong body.
describe('security: the registry port serves reads only', { timeout: 180_000 }, () => {
  let dir: string;
  let node: ShoalProcess;
  let tagPath: string;
  let layerDigest: string;

  before(async () => {
    dir = await shortTempDir('shoal-sec-port');
    const image = await smallImage('security');
    await importLayout(join(dir, 'data'), image.dir, NS, 'test/app');
    tagPath = `/v2/test/app/manifests/${image.tag}?ns=${NS}`;
    layerDigest = image.image.layers[0]?.digest ?? '';
    node = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'data')]);
    await node.start();
  });
  after(async () => {
    await node?.stop();
    await removeDir(dir);
  });

  it('refuses a tag invalidation POSTed by anyone, and the tag keeps working across a restart', async () => {
    const attack = `${node.url}/_shoal/v1/tags/invalidated?name=docker.io/test/app:small&at=9999999999999`;
    const refused = await fetchOutcome(attack, { method: 'POST', headers: { 'x-shoal-mirrored': 'true' } });
    assert.ok([404, 405].includes(refused.status), `answered ${refused.status}`);
    assert.equal((await fetchOutcome(`${node.url}${tagPath}`)).status, 200);
    await node.stop();
    await node.start();
    assert.equal((await fetchOutcome(`${node.url}${tagPath}`)).status, 200);
  });

  it('refuses a corrupt report POSTed by anyone', async () => {
    const report = await fetchOutcome(`${node.url}/_shoal/v1/corrupt/${layerDigest}`, { method: 'POST' });
    assert.ok([404, 405].includes(report.status), `answered ${report.status}`);
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      assert.equal((await fetchOutcome(`${node.url}${tagPath}`, { method })).status, 405);
    }
  });
});

describe('security: a peer header bypasses nothing', { timeout: 180_000 }, () => {
  let dir: string;
  let filtered: ShoalProcess;
  let digestsOnly: ShoalProcess;
  let paths: { tag: string; manifest: string; blob: string; otherRegistry: string; open: string };
  const claims = [
    { 'x-shoal-mirrored': 'true' },
    { 'x-shoal-owner-fetch': 'true' },
    { 'x-shoal-mirrored': '1' },
  ];

  before(async () => {
    dir = await shortTempDir('shoal-sec-header');
    const image = await smallImage('security');
    const data = join(dir, 'data');
    await importLayout(data, image.dir, NS, 'test/blocked');
    await importLayout(data, image.dir, NS, 'test/open');
    const base = '/v2/test/blocked';
    paths = {
      tag: `${base}/manifests/${image.tag}?ns=${NS}`,
      manifest: `${base}/manifests/${image.image.manifest.digest}?ns=${NS}`,
      blob: `${base}/blobs/${image.image.layers[0]?.digest}?ns=${NS}`,
      otherRegistry: `/v2/test/open/manifests/${image.image.manifest.digest}?ns=ghcr.io`,
      open: `/v2/test/open/manifests/${image.tag}?ns=${NS}`,
    };
    filtered = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      data,
      '--mirrored-registries',
      'https://docker.io',
      '--registry-filters',
      '^docker\\.io/test/blocked[:@]',
    ]);
    digestsOnly = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(dir, 'data2'),
      '--resolve-tags=false',
    ]);
    await importLayout(join(dir, 'data2'), image.dir, NS, 'test/open');
    await filtered.start();
    await digestsOnly.start();
  });
  after(async () => {
    await filtered?.stop();
    await digestsOnly?.stop();
    await removeDir(dir);
  });

  it('applies --registry-filters and --mirrored-registries to a request that claims to be a peer', async () => {
    for (const headers of [{}, ...claims]) {
      for (const path of [paths.tag, paths.manifest, paths.blob, paths.otherRegistry]) {
        const outcome = await fetchOutcome(`${filtered.url}${path}`, { headers });
        assert.notEqual(outcome.status, 200, `${path} with ${JSON.stringify(headers)}`);
        assert.ok(outcome.status < 500, `${path}: ${outcome.status}`);
      }
    }
    // A plain client still gets what is not filtered; an unproven peer claim gets nothing at all.
    assert.equal((await fetchOutcome(`${filtered.url}${paths.open}`)).status, 200);
    for (const headers of claims) {
      assert.equal((await fetchOutcome(`${filtered.url}${paths.open}`, { headers })).status, 401);
    }
  });

  it('applies --resolve-tags=false to a request that claims to be a peer', async () => {
    for (const headers of [{}, ...claims]) {
      const outcome = await fetchOutcome(`${digestsOnly.url}${paths.open}`, { headers });
      assert.ok(
        outcome.status === 404 || outcome.status === 401,
        `${JSON.stringify(headers)}: ${outcome.status}`,
      );
    }
  });
});

describe('security: pull-through reaches only the registries named, and checks every byte', {
  timeout: 180_000,
}, () => {
  let dir: string;
  let guarded: GuardedPullThrough;
  let upstream: LyingUpstream;
  let node: ShoalProcess;
  // Random bytes, so a prefix or a flipped copy can never pass for the blob.
  const blob = contentOf(createHash('sha512').update('security-blob').digest().subarray(0, 64).fill(7, 0, 1));
  // One 1 MiB blob per lie, so no lie is answered from what an earlier test cached.
  const bigOf = (lie: string) =>
    contentOf(
      Buffer.concat(
        Array.from({ length: 32_768 }, (_, i) => createHash('sha256').update(`${lie}-${i}`).digest()),
      ),
    );
  const bigs = new Map(['head-size', 'get-length', 'digest', 'chunked'].map((lie) => [lie, bigOf(lie)]));
  // Wrong bytes of the right length, smaller than one stream chunk and over several (chunks are 1 MiB).
  const wrongSized = (label: string, bytes: number) =>
    contentOf(
      Buffer.concat(
        Array.from({ length: bytes / 32 }, (_, i) => createHash('sha256').update(`${label}-${i}`).digest()),
      ),
    );
  const smallWrong = wrongSized('small-wrong', 4096);
  const largeWrong = wrongSized('large-wrong', 3 << 20);
  const manifest = contentOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_OCI_MANIFEST,
        layers: [],
        pad: 'x'.repeat(600),
      }),
    ),
    MEDIA_TYPE_OCI_MANIFEST,
  );

  before(async () => {
    dir = await shortTempDir('shoal-sec-upstream');
    const contents = [
      [blob],
      ...[...bigs.values(), smallWrong, largeWrong].map((big) => [big] as const),
      [manifest, 'v1'],
    ] as const;
    guarded = await startGuardedPullThrough(join(dir, 'data'), contents, [
      '127.0.0.1',
      '127.0.0.1',
      '127.0.0.3',
    ]);
    ({ upstream, node } = guarded);
  });
  after(async () => {
    await guarded?.stop();
    await removeDir(dir);
  });

  it('refuses to start with --upstream-fallback and no --mirrored-registries, naming the flag', async () => {
    const child = new Child(process.execPath, [
      CLI,
      'registry',
      '--store',
      'embedded',
      '--data-dir',
      join(dir, 'refused'),
      '--registry-addr',
      '127.0.0.1:0',
      '--upstream-fallback',
    ]);
    assert.equal(await child.finished, 2);
    assert.match(child.output, /--mirrored-registries: required with --upstream-fallback/);
  });

  it('never connects where ?ns= points unless the operator named it, and tells the caller nothing', async () => {
    const [named, first, second] = guarded.listeners as [
      CountingListener,
      CountingListener,
      CountingListener,
    ];
    const targets = [
      `127.0.0.1:${first.port}`,
      `127.0.0.3:${second.port}`,
      `localhost:${named.port}`,
      '169.254.169.254',
      '127.0.0.1:1',
      'does-not-exist.invalid',
      `[::1]:${first.port}`,
    ];
    const bodies = new Set<string>();
    for (const ns of targets) {
      for (const path of [`/v2/x/blobs/${blob.digest}`, '/v2/x/manifests/latest']) {
        const outcome = await fetchOutcome(`${node.url}${path}?ns=${encodeURIComponent(ns)}`);
        assert.ok([404, 503].includes(outcome.status), `${ns}${path}: ${outcome.status}`);
        assert.doesNotMatch(
          outcome.body,
          /ECONN|refused|timed? ?out|resolve|ENOTFOUND|socket|answered/i,
          outcome.body,
        );
        if (outcome.status === 503) bodies.add(outcome.body);
      }
    }
    assert.deepEqual([first.connections, second.connections, named.connections], [0, 0, 0]);
    assert.ok(bodies.size <= 1, `503 bodies differ: ${[...bodies].join(' | ')}`);
    // The registry that was named is reached as before.
    const honest = await fetchOutcome(`${node.url}/v2/lie/none/blobs/${blob.digest}?ns=${upstream.host}`);
    assert.equal(honest.status, 200);
    assert.equal(honest.sha256, blob.digest);
  });

  const lies: Lie[] = ['head-size', 'get-length', 'digest', 'chunked'];
  for (const lie of lies) {
    it(`never completes a wrong body when upstream lies (${lie})`, async () => {
      const big = bigs.get(lie) as ReturnType<typeof contentOf>;
      for (const method of ['HEAD', 'GET', 'GET']) {
        const outcome = await fetchOutcome(
          `${node.url}/v2/lie/${lie}/blobs/${big.digest}?ns=${upstream.host}`,
          {
            method,
          },
        );
        if (method === 'HEAD') {
          // A HEAD states the size the body will be held to, never an unchecked one.
          if (outcome.status === 200) assert.notEqual(outcome.length, 100);
          continue;
        }
        const wrong = outcome.status === 200 && outcome.complete && outcome.sha256 !== big.digest;
        assert.equal(wrong, false, `${lie}: a complete 200 of ${outcome.length} bytes that fail the digest`);
        // The lie about HEAD is harmless: the bytes GET brings are checked, so the client gets them whole.
        if (lie === 'head-size') {
          assert.equal(outcome.status, 200);
          assert.equal(outcome.length, big.bytes.length);
          assert.equal(outcome.sha256, big.digest);
        } else if (outcome.status === 200) {
          assert.equal(outcome.complete, false, `${lie}: the body must be cut`);
        }
      }
    });
  }

  it('never sends a finished 200 of a small or a large blob whose bytes fail their digest (curl, Node, Go)', async () => {
    // Go: containerd's own fetcher (`ctr content fetch-object`), sent to shoal by a hosts.toml whose
    // registry fallback is refused, so what it gets is shoal's answer alone.
    const hostsDir = join(dir, 'certs.d');
    await mkdir(join(hostsDir, upstream.host), { recursive: true });
    await writeFile(
      join(hostsDir, upstream.host, 'hosts.toml'),
      `server = "http://127.0.0.1:9"\n\n[host."${node.url}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    for (const wrong of [smallWrong, largeWrong]) {
      const ctr = new Child('ctr', [
        'content',
        'fetch-object',
        '--plain-http',
        '--hosts-dir',
        hostsDir,
        `${upstream.host}/lie/digest@${wrong.digest}`,
      ]);
      assert.notEqual(await ctr.finished, 0, `ctr fetched it: ${ctr.output.slice(-300)}`);
      // The small blob failed before its first byte: containerd was told 404 and moved on.
      if (wrong === smallWrong) assert.match(ctr.output, /from remote: not found\s*$/);
      const url = `${node.url}/v2/lie/digest/blobs/${wrong.digest}?ns=${upstream.host}`;
      for (let attempt = 0; attempt < 2; attempt++) {
        const outcome = await fetchOutcome(url);
        assert.ok(!(outcome.status === 200 && outcome.complete), `Node: a finished ${outcome.status}`);
        // The small blob fails before its first byte: an error status, so containerd moves on at once.
        if (wrong === smallWrong) assert.equal(outcome.status, 404);
        const curl = new Child('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', url]);
        const code = await curl.finished;
        const status = curl.output.trim().slice(-3);
        assert.ok(code !== 0 || status !== '200', `curl exited 0 with ${status}: ${curl.output}`);
      }
    }
  });

  it('serves a manifest by tag whole when upstream’s HEAD lies about its size', async () => {
    const outcome = await fetchOutcome(`${node.url}/v2/lie/head-size/manifests/v1?ns=${upstream.host}`, {
      headers: { accept: MEDIA_TYPE_OCI_MANIFEST },
    });
    assert.equal(outcome.status, 200);
    assert.equal(outcome.complete, true);
    assert.equal(outcome.length, manifest.bytes.length);
    assert.equal(outcome.sha256, manifest.digest);
  });
});
