import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseDigest } from '../../src/main/oci/digest.js';
import { MEDIA_TYPE_OCI_MANIFEST } from '../../src/main/oci/media-types.js';
import { MirroringStore } from '../../src/main/peer/mirroring-store.js';
import { PeerAuth } from '../../src/main/peer/peer-auth.js';
import { MemoryNetwork, MemoryRouter } from '../../src/main/routing/memory.js';
import { importOciLayout } from '../../src/main/store/oci-layout.js';
import { FaultyStore } from '../harness/faulty-store.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { get, rawRequest, startRegistry } from '../harness/http.js';
import { seededBytes } from '../harness/images.js';
import { freePort } from '../harness/process.js';

const NS = '127.0.0.1:5000';
const MiB = 1 << 20;

interface Node {
  local: FaultyStore;
  router: MemoryRouter;
  url: string;
  port: number;
  stop(): Promise<void>;
}

async function startNode(network: MemoryNetwork, id: string): Promise<Node> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const local = new FaultyStore();
  const router = new MemoryRouter({ network }, { id, registry: url });
  await router.start();
  // A 1 s read timeout (default 5 s) keeps the stalled-peer cases short.
  const store = new MirroringStore({ local, router }, { readTimeoutMs: 1000 });
  const server = await startRegistry(store, {}, { port }, local, router);
  return {
    local,
    router,
    url,
    port,
    stop: async () => {
      await server.stop();
      await router.stop();
    },
  };
}

describe('mirror path: a node serves what only its peers hold', { timeout: 120_000 }, () => {
  const network = new MemoryNetwork();
  let a: Node;
  let b: Node;
  let c: Node;
  let image: SingleImageFixture;
  const big = { bytes: Buffer.alloc(0), digest: parseDigest(`sha256:${'0'.repeat(64)}`) };

  before(async () => {
    [a, b, c] = await Promise.all([
      startNode(network, 'a'),
      startNode(network, 'b'),
      startNode(network, 'c'),
    ]);
    image = await smallImage('mirror');
    await importOciLayout(a.local, image.dir, { registry: NS, repository: 'app' });
    const keys = [
      `${NS}/app:${image.tag}`,
      image.image.manifest.digest,
      image.image.config.digest,
      ...image.image.layers.map((l) => l.digest),
    ];
    await a.router.advertise(keys);
    const parts: Buffer[] = [];
    for await (const part of seededBytes('mirror-big', 16 * MiB)) parts.push(part);
    big.bytes = Buffer.concat(parts);
    big.digest = parseDigest(`sha256:${createHash('sha256').update(big.bytes).digest('hex')}`);
    for (const node of [a, c]) {
      await node.local.ingest(big.digest, [big.bytes]);
      await node.router.advertise([big.digest]);
    }
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it('resolves a tag and serves the manifest and blobs from a peer', async () => {
    const head = await fetch(`${b.url}/v2/app/manifests/${image.tag}?ns=${NS}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), image.image.manifest.digest);
    assert.equal(head.headers.get('content-type'), MEDIA_TYPE_OCI_MANIFEST);
    const manifest = await fetch(`${b.url}/v2/app/manifests/${image.image.manifest.digest}?ns=${NS}`);
    assert.equal(manifest.status, 200);
    const body = Buffer.from(await manifest.arrayBuffer());
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, image.image.manifest.digest);
    for (const blob of [image.image.config, ...image.image.layers]) {
      const response = await fetch(`${b.url}/v2/app/blobs/${blob.digest}?ns=${NS}`);
      assert.equal(response.status, 200);
      const bytes = Buffer.from(await response.arrayBuffer());
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
    }
  });

  it('asks the holder once to describe and once for the bytes: the open after a lookup asks nothing again', async () => {
    a.local.asked.stat = 0;
    a.local.asked.resolve = 0;
    const opened = a.local.opened.length;
    // By tag: the peer's answer to HEAD is what the manifest is fetched by.
    const manifest = await fetch(`${b.url}/v2/app/manifests/${image.tag}?ns=${NS}`);
    assert.equal(manifest.status, 200);
    const body = Buffer.from(await manifest.arrayBuffer());
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, image.image.manifest.digest);
    // One HEAD by tag (a resolve), one GET by digest (a stat, then the open).
    assert.deepEqual(a.local.asked, { stat: 1, resolve: 1 });
    assert.equal(a.local.opened.length, opened + 1);
  });

  it('serves ranges from a peer', async () => {
    const response = await fetch(`${b.url}/v2/app/blobs/${big.digest}`, {
      headers: { Range: 'bytes=100-199' },
    });
    assert.equal(response.status, 206);
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), big.bytes.subarray(100, 200));
  });

  it('answers a peer request from its own store only, so requests never loop', async () => {
    const target = `/v2/app/manifests/${image.tag}?ns=${NS}`;
    const signed = await new PeerAuth({ router: a.router }).headers('b', {
      method: 'GET',
      target,
      range: undefined,
      mirrored: true,
      ownerFetch: false,
    });
    const response = await fetch(`${b.url}${target}`, { headers: { ...signed, 'X-Shoal-Mirrored': 'true' } });
    assert.equal(response.status, 404);
    // The same claim without a member's signature is refused outright.
    const unsigned = await fetch(`${b.url}${target}`, { headers: { 'X-Shoal-Mirrored': 'true' } });
    assert.equal(unsigned.status, 401);
  });

  it('answers 404 fast when no peer holds the content', async () => {
    const started = Date.now();
    const response = await fetch(`${b.url}/v2/app/blobs/sha256:${'9'.repeat(64)}`);
    assert.equal(response.status, 404);
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });

  it('continues on another peer when the serving peer dies mid-body: one unbroken, correct body', async () => {
    // Both holders break off a body served from byte 0, whichever is asked first; a resume is served whole.
    for (const holder of [a, c]) {
      holder.local.fault = 'short';
      holder.local.faultFromStartOnly = true;
      holder.local.opened.length = 0;
    }
    try {
      const response = await fetch(`${b.url}/v2/app/blobs/${big.digest}`);
      assert.equal(response.status, 200);
      const bytes = Buffer.from(await response.arrayBuffer());
      assert.equal(bytes.length, big.bytes.length);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, big.digest);
      assert.ok(
        [a, c].some((holder) => holder.local.opened.some((range) => range.start > 0)),
        'the rest of the body came from the other holder with a Range request',
      );
    } finally {
      for (const holder of [a, c]) {
        holder.local.fault = 'none';
        holder.local.faultFromStartOnly = false;
      }
    }
  });

  it('cuts the client off when no peer can finish the body', async () => {
    const network2 = new MemoryNetwork();
    const [holder, asker] = await Promise.all([startNode(network2, 'holder'), startNode(network2, 'asker')]);
    try {
      await holder.local.ingest(big.digest, [big.bytes]);
      await holder.router.advertise([big.digest]);
      holder.local.fault = 'short';
      await assert.rejects(
        rawRequest(asker.port, get(`/v2/app/blobs/${big.digest}`), { timeoutMs: 10_000 }),
        /connection closed/,
      );
    } finally {
      await Promise.all([holder.stop(), asker.stop()]);
    }
  });
});
