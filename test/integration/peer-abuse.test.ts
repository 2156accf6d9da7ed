import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../src/main/metrics/metrics.js';
import { type Digest, parseDigest } from '../../src/main/oci/digest.js';
import { MirroringStore } from '../../src/main/peer/mirroring-store.js';
import { MemoryNetwork } from '../../src/main/routing/memory.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import type { ContentOrigin } from '../../src/main/store/store.js';
import type { VerifyPool } from '../../src/main/verify/pool.js';
import { answerWith, blobHeaders, RawPeer, response, startMember } from '../harness/raw-peer.js';
import { startVerifier } from '../harness/verifier.js';

const NS = '127.0.0.1:5000';

const digestOf = (bytes: Buffer): Digest =>
  parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

// A peer is a pod on the node network: it may advertise what it does not hold, answer for other content
// than was asked, or send more than it declared. Each is counted in shoal_peer_failures_total, never reaches
// the client, and (when another holder is up) costs the client nothing but the time to ask the next peer.
describe('peer-side abuse: false advertisement, a wrong digest header, extra bytes', {
  timeout: 60_000,
}, () => {
  const network = new MemoryNetwork();
  const metrics = new Metrics();
  const wanted = Buffer.alloc(64 << 10, 'w');
  const other = Buffer.alloc(48 << 10, 'o');
  const wantedDigest = digestOf(wanted);
  const otherDigest = digestOf(other);
  const only = Buffer.alloc(32 << 10, 's');
  const onlyDigest = digestOf(only);
  const peers = {
    ghost: new RawPeer(answerWith(() => response(404, { 'Content-Length': 0 }))),
    swapper: new RawPeer(
      answerWith((method) =>
        response(200, blobHeaders(otherDigest, other.length), method === 'HEAD' ? undefined : other),
      ),
    ),
    overlong: new RawPeer(
      answerWith((method) =>
        response(
          200,
          blobHeaders(onlyDigest, only.length),
          method === 'HEAD' ? undefined : Buffer.concat([only, Buffer.alloc(1000, 'x')]),
        ),
      ),
    ),
  };
  let honest: Awaited<ReturnType<typeof startMember>>;
  let client: Awaited<ReturnType<typeof startMember>>;
  let verifier: VerifyPool;
  let store: MirroringStore;

  const failures = async (cause: string): Promise<number> => {
    const match = (await metrics.render()).match(
      new RegExp(`shoal_peer_failures_total\\{cause="${cause}"\\} (\\d+)`),
    );
    return Number(match?.[1] ?? -1);
  };
  const getBlob = async (digest: Digest, method = 'GET'): Promise<{ status: number; digest?: Digest }> => {
    const res = await fetch(`${client.url}/v2/app/blobs/${digest}?ns=${NS}`, { method });
    const body = Buffer.from(await res.arrayBuffer());
    return method === 'HEAD' ? { status: res.status } : { status: res.status, digest: digestOf(body) };
  };

  before(async () => {
    // The liars join and advertise first, so a lookup hands them out before the honest holder: each is asked.
    await peers.ghost.start(network, 'ghost', [wantedDigest]);
    await peers.swapper.start(network, 'swapper', [wantedDigest]);
    await peers.overlong.start(network, 'overlong', [onlyDigest]);
    const held = new MemoryStore();
    await held.ingest(wantedDigest, [wanted]);
    honest = await startMember(network, 'honest', held);
    await honest.router.advertise([wantedDigest]);
    verifier = await startVerifier({ threads: 1 }, metrics);
    const local = new MemoryStore();
    client = await startMember(network, 'client', local, (router) => {
      store = new MirroringStore({ local, router, verifier, metrics });
      return store;
    });
  });

  after(async () => {
    await client?.stop();
    await honest?.stop();
    await verifier?.stop();
    for (const peer of Object.values(peers)) await peer.stop();
  });

  it('serves the right bytes past a peer that advertised them falsely and one that answered for others', async () => {
    const got = await getBlob(wantedDigest);
    assert.equal(got.status, 200);
    assert.equal(got.digest, wantedDigest);
    assert.deepEqual(peers.ghost.asked, [`GET /v2/app/blobs/${wantedDigest}`]);
    assert.deepEqual(peers.swapper.asked, [`GET /v2/app/blobs/${wantedDigest}`]);
    assert.equal(await failures('absent'), 1, 'the false advertisement is counted');
    assert.equal(await failures('wrong_digest'), 1, 'the answer for other content is counted');
    assert.equal(await failures('overlong'), 0);
  });

  it('sets the peer that answered for other content aside: a HEAD does not ask it again', async () => {
    assert.equal((await getBlob(wantedDigest, 'HEAD')).status, 200);
    assert.equal(peers.swapper.asked.length, 1, 'the swapper was not asked again');
    assert.match(await metrics.render(), /shoal_peer_quarantines_total\{reason="corrupt"\} 1\b/);
  });

  it('drops the bytes past the declared length, serves the body whole, and counts it', async () => {
    const got = await getBlob(onlyDigest);
    assert.equal(got.status, 200);
    assert.equal(got.digest, onlyDigest);
    assert.equal(await failures('overlong'), 1);
  });

  it('refuses a HEAD answered for other content when the liar is the only holder, and says why', async () => {
    const lone = Buffer.alloc(16 << 10, 'l');
    const loneDigest = digestOf(lone);
    const liar = new RawPeer(answerWith(() => response(200, blobHeaders(otherDigest, other.length))));
    await liar.start(network, 'lone-swapper', [loneDigest]);
    try {
      const before = await failures('wrong_digest');
      assert.equal((await getBlob(loneDigest, 'HEAD')).status, 404);
      assert.equal(await failures('wrong_digest'), before + 1);
      // What the request's log line carries as `why`: the providers found, and what each one did.
      const origin: ContentOrigin = { registry: NS, repository: 'app', kind: 'blobs', body: true };
      assert.equal(await store.stat(loneDigest, origin), undefined);
      assert.equal(origin.why, 'GET found 1 provider; 1 passed over (set aside)');
      const fresh = Buffer.alloc(8 << 10, 'f');
      const asked: ContentOrigin = { registry: NS, repository: 'app', kind: 'blobs' };
      assert.equal(await store.stat(digestOf(fresh), asked), undefined);
      assert.match(asked.why ?? '', /^HEAD found no provider(: the lookup ended)? in \d+ ms$/);
      const ghostly = digestOf(Buffer.alloc(8 << 10, 'g'));
      await peers.ghost.router.advertise([ghostly]);
      const told: ContentOrigin = { registry: NS, repository: 'app', kind: 'blobs', body: true };
      assert.equal(await store.stat(ghostly, told), undefined);
      assert.equal(
        told.why,
        'GET found 1 provider; failed: ghost absent; HEAD found 1 provider; failed: ghost absent',
      );
    } finally {
      await liar.stop();
    }
  });
});
