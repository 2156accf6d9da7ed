import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { contentOf, type UpstreamContent } from '../harness/lying-upstream.js';
import { freePort, waitFor } from '../harness/process.js';
import { RedirectingUpstream } from '../harness/redirecting-upstream.js';
import { clusterPullThroughArgs, pullThroughArgs, ShoalProcess, waitForMesh } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

function download(url: string, range?: string): Promise<{ status: number; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false, headers: range === undefined ? {} : { range } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

// Real shoal processes in front of a registry that redirects every blob GET to a "CDN" on a signed URL, as
// Docker Hub, GHCR, Quay and ECR do. Every flag but the addresses is at its default.
describe('pull-through follows upstream redirects', { timeout: 240_000 }, () => {
  let dir: string;
  let upstream: RedirectingUpstream;
  let node: ShoalProcess;
  const blobs: UpstreamContent[] = [];
  const url = (blob: UpstreamContent) => `${node.url}/v2/app/web/blobs/${blob.digest}?ns=${upstream.host}`;

  before(async () => {
    dir = await shortTempDir('shoal-redirect');
    upstream = new RedirectingUpstream();
    for (let i = 0; i < 6; i++) {
      const blob = contentOf(randomBytes((i + 1) * 3 * 1024 * 1024));
      blobs.push(blob);
      upstream.add(blob);
    }
    await upstream.start();
    await writeFile(join(dir, 'config.json'), upstream.dockerConfig());
    node = new ShoalProcess([
      ...pullThroughArgs(join(dir, 'data'), upstream.host),
      '--registry-credentials',
      join(dir, 'config.json'),
    ]);
    await node.start();
  });

  after(async () => {
    await node?.stop();
    await upstream?.stop();
    await removeDir(dir);
  });

  it('serves a blob from the redirect target, verified, without sending it the registry credentials', async () => {
    const blob = blobs[0] as UpstreamContent;
    const got = await download(url(blob));
    assert.equal(got.status, 200);
    assert.equal(sha256(got.bytes), blob.digest);
    assert.ok(
      upstream.registryRequests.some((r) => r.authorization?.startsWith('Basic ')),
      'the registry got its credentials',
    );
    assert.ok(upstream.cdnRequests.length > 0, 'the CDN was asked');
    for (const seen of upstream.cdnRequests)
      assert.equal(seen.authorization, undefined, `no Authorization to the CDN: ${seen.url}`);
    // Served from the node's store now: no second upstream fetch.
    const again = await download(url(blob));
    assert.equal(sha256(again.bytes), blob.digest);
    assert.deepEqual(upstream.blobGets(blob.digest), { registry: 1, cdn: 1 });
  });

  it('merges concurrent cold pulls of a redirected blob into one download', async () => {
    const blob = blobs[1] as UpstreamContent;
    const results = await Promise.all(Array.from({ length: 6 }, () => download(url(blob))));
    for (const got of results) assert.deepEqual([got.status, sha256(got.bytes)], [200, blob.digest]);
    assert.deepEqual(upstream.blobGets(blob.digest), { registry: 1, cdn: 1 });
  });

  it('resumes by Range when the redirect target breaks off mid-body; the client never sees the break', async () => {
    const blob = blobs[2] as UpstreamContent;
    upstream.breakMidBody = 1;
    const got = await download(url(blob));
    assert.deepEqual([got.status, sha256(got.bytes)], [200, blob.digest]);
    const ranged = upstream.cdnRequests.filter((r) => r.url.includes(blob.digest.slice(7)) && r.range);
    assert.equal(ranged.length, 1, 'one resumed request');
    // From where the spool stood when the connection dropped: at most the half the CDN sent.
    const offset = Number(/^bytes=(\d+)-$/.exec(ranged[0]?.range ?? '')?.[1]);
    assert.ok(offset > 0 && offset <= blob.bytes.length / 2, `resumed at ${offset}`);
    assert.equal(upstream.breakMidBody, 0);
  });

  it('asks the registry for a new URL when the signed one has expired', async () => {
    const blob = blobs[3] as UpstreamContent;
    upstream.issueExpired = 1;
    const got = await download(url(blob));
    assert.deepEqual([got.status, sha256(got.bytes)], [200, blob.digest]);
    assert.deepEqual(upstream.blobGets(blob.digest), { registry: 2, cdn: 2 });
  });

  it('follows a chain of redirects, relative ones included, up to its bound, and serves ranges', async () => {
    const blob = blobs[4] as UpstreamContent;
    upstream.extraHops = 2;
    try {
      const got = await download(url(blob), 'bytes=100-199');
      assert.equal(got.status, 206);
      assert.deepEqual(got.bytes, blob.bytes.subarray(100, 200));
    } finally {
      upstream.extraHops = 0;
    }
  });

  it('never follows a redirect to a name that resolves to the node’s own networks', async () => {
    const blob = blobs[5] as UpstreamContent;
    upstream.cdnHost = 'localhost';
    try {
      const got = await download(url(blob));
      assert.ok([404, 503].includes(got.status), `status ${got.status}`);
      assert.equal(upstream.blobGets(blob.digest).cdn, 0, 'the CDN on loopback was never dialled');
    } finally {
      upstream.cdnHost = '127.0.0.1';
    }
  });

  it('answers 404 at once, so the client falls back, when a registry redirects without end', async () => {
    const blob = blobs[5] as UpstreamContent;
    upstream.extraHops = 100;
    try {
      const started = Date.now();
      const got = await download(url(blob));
      assert.ok([404, 503].includes(got.status), `status ${got.status}`);
      assert.ok(!got.bytes.toString().includes('redirect'), 'the reason stays in the log');
      assert.ok(Date.now() - started < 5_000);
      assert.equal(upstream.blobGets(blob.digest).cdn, 0);
    } finally {
      upstream.extraHops = 0;
    }
  });
});

const NODES = 3;

// The cluster path: with P2P on, the owner of a digest is the only node that goes upstream, and it follows
// the redirect; the others stream from it.
describe('pull-through across a cluster with a redirecting upstream', { timeout: 240_000 }, () => {
  let dir: string;
  let upstream: RedirectingUpstream;
  const nodes: ShoalProcess[] = [];
  const blob = contentOf(randomBytes(24 * 1024 * 1024));

  before(async () => {
    dir = await shortTempDir('shoal-redirect-cluster');
    upstream = new RedirectingUpstream();
    upstream.add(blob);
    await upstream.start();
    await writeFile(join(dir, 'config.json'), upstream.dockerConfig());
    const routerPorts = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    for (let i = 0; i < NODES; i++) {
      nodes.push(
        new ShoalProcess([
          ...clusterPullThroughArgs(dir, i, routerPorts, upstream.host),
          '--registry-credentials',
          join(dir, 'config.json'),
        ]),
      );
    }
    await Promise.all(nodes.map((node) => node.start()));
    await waitForMesh(nodes);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await upstream?.stop();
    await removeDir(dir);
  });

  it('fetches a redirected blob once for concurrent cold pulls on every node', async () => {
    const url = (node: ShoalProcess) => `${node.url}/v2/app/web/blobs/${blob.digest}?ns=${upstream.host}`;
    const results = await Promise.all(nodes.flatMap((node) => [download(url(node)), download(url(node))]));
    for (const got of results) assert.deepEqual([got.status, sha256(got.bytes)], [200, blob.digest]);
    await waitFor('counts settle', async () => upstream.blobGets(blob.digest).cdn >= 1, 5_000);
    assert.deepEqual(upstream.blobGets(blob.digest), { registry: 1, cdn: 1 }, 'one upstream GET');
    for (const seen of upstream.cdnRequests) assert.equal(seen.authorization, undefined);
  });
});
