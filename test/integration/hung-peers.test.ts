import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../src/main/metrics/metrics.js';
import { type Digest, parseDigest } from '../../src/main/oci/digest.js';
import { MirroringStore } from '../../src/main/peer/mirroring-store.js';
import { MemoryNetwork } from '../../src/main/routing/memory.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import type { VerifyPool } from '../../src/main/verify/pool.js';
import { blobHeaders, RawPeer, response, startMember } from '../harness/raw-peer.js';
import { startVerifier } from '../harness/verifier.js';

const NS = '127.0.0.1:5000';
const MiB = 1 << 20;

const digestOf = (bytes: Buffer): Digest =>
  parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

/** Distinct bytes of `size`, so a body stitched from wrong offsets fails its digest. */
function blob(seed: string, size: number): { bytes: Buffer<ArrayBuffer>; digest: Digest } {
  const bytes = Buffer.alloc(size);
  for (let at = 0, n = 0; at < size; n++)
    at += createHash('sha256').update(`${seed}${n}`).digest().copy(bytes, at);
  return { bytes, digest: digestOf(bytes) };
}

/** A GET through the client; what came back, how long it took, and whether the body was whole. */
async function timedGet(
  url: string,
): Promise<{ status: number; digest?: Digest; ms: number; whole: boolean }> {
  const started = performance.now();
  const res = await fetch(url);
  try {
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, digest: digestOf(body), ms: performance.now() - started, whole: true };
  } catch {
    return { status: res.status, ms: performance.now() - started, whole: false };
  }
}

// A member may accept connections and never answer (a stopped process, a full accept queue), stop in the
// middle of a body, or trickle a byte a second. None of them may hold a client: shoal moves on within its
// timeouts, at their defaults, to a peer that serves, and sets the slow one aside. With nobody else to
// ask, the client is cut within the server's 5 s bound on a read, never left waiting on a trickle.
describe('hung and trickling peers', { timeout: 90_000 }, () => {
  const network = new MemoryNetwork();
  const metrics = new Metrics();
  const early = blob('early', 2 * MiB);
  const middle = blob('middle', 2 * MiB);
  const slow = blob('slow', 2 * MiB);
  const alone = blob('alone', 2 * MiB);
  const trickles: NodeJS.Timeout[] = [];
  /** Sends the head and `bytes` of the body at once, then one more byte every second. */
  const trickle =
    (content: { bytes: Buffer; digest: Digest }, bytes: number) => (_: unknown, socket: Socket) => {
      socket.write(
        response(200, blobHeaders(content.digest, content.bytes.length), content.bytes.subarray(0, bytes)),
      );
      let at = bytes;
      const timer = setInterval(() => {
        if (socket.destroyed || at >= content.bytes.length) return clearInterval(timer);
        socket.write(content.bytes.subarray(at, ++at));
      }, 1000);
      trickles.push(timer);
    };
  const peers = {
    // Accepts, reads the request, and never answers.
    silent: new RawPeer(() => undefined),
    // Sends the head and the first 256 KiB, then nothing, with the connection open.
    stalled: new RawPeer((_, socket) =>
      socket.write(
        response(200, blobHeaders(middle.digest, middle.bytes.length), middle.bytes.subarray(0, 256 << 10)),
      ),
    ),
    trickler: new RawPeer(trickle(slow, 0)),
    lone: new RawPeer(trickle(alone, 0)),
  };
  let honest: Awaited<ReturnType<typeof startMember>>;
  let client: Awaited<ReturnType<typeof startMember>>;
  let verifier: VerifyPool;
  const url = (digest: Digest): string => `${client.url}/v2/app/blobs/${digest}?ns=${NS}`;

  before(async () => {
    // The misbehaving peers join and advertise first, so each is the first asked.
    await peers.silent.start(network, 'silent', [early.digest]);
    await peers.stalled.start(network, 'stalled', [middle.digest]);
    await peers.trickler.start(network, 'trickler', [slow.digest]);
    await peers.lone.start(network, 'lone', [alone.digest]);
    const held = new MemoryStore();
    for (const content of [early, middle, slow]) await held.ingest(content.digest, [content.bytes]);
    honest = await startMember(network, 'honest', held);
    await honest.router.advertise([early.digest, middle.digest, slow.digest]);
    verifier = await startVerifier({ threads: 1 }, metrics);
    const local = new MemoryStore();
    client = await startMember(
      network,
      'client',
      local,
      (router) => new MirroringStore({ local, router, verifier, metrics }),
    );
  });

  after(async () => {
    for (const timer of trickles) clearInterval(timer);
    await client?.stop();
    await honest?.stop();
    await verifier?.stop();
    for (const peer of Object.values(peers)) await peer.stop();
  });

  it('a peer that accepts and never answers costs the client no more than the hedge', async (t) => {
    const got = await timedGet(url(early.digest));
    t.diagnostic(`served in ${got.ms.toFixed(0)} ms past the silent peer`);
    assert.deepEqual([got.status, got.digest], [200, early.digest]);
    assert.equal(peers.silent.asked.length, 1, 'the silent peer was asked first');
    assert.ok(got.ms < 1500, `took ${got.ms.toFixed(0)} ms`);
  });

  it('a body that stops midway is finished by another peer, in one unbroken response', async (t) => {
    const got = await timedGet(url(middle.digest));
    t.diagnostic(`served in ${got.ms.toFixed(0)} ms; the stalled peer sent 256 KiB then nothing`);
    assert.deepEqual([got.status, got.digest], [200, middle.digest]);
    assert.ok(got.ms < 4000, `took ${got.ms.toFixed(0)} ms`);
    assert.match(await metrics.render(), /shoal_peer_resumes_total \d*[1-9]/);
  });

  it('a peer that trickles a byte a second is left for another, and set aside', async (t) => {
    const before = await metrics.render();
    const got = await timedGet(url(slow.digest));
    t.diagnostic(
      `served in ${got.ms.toFixed(0)} ms; the trickler sent ${peers.trickler.asked.length} answer(s)`,
    );
    assert.deepEqual([got.status, got.digest], [200, slow.digest]);
    assert.ok(got.ms < 6000, `took ${got.ms.toFixed(0)} ms`);
    const silentAside = (text: string): number =>
      Number(/shoal_peer_quarantines_total\{reason="silent"\} (\d+)/.exec(text)?.[1] ?? 0);
    assert.ok(silentAside(await metrics.render()) > silentAside(before), 'the trickler was set aside');
  });

  it('with only a trickler to ask, the client is cut within the read bound instead of waiting', async (t) => {
    const got = await timedGet(url(alone.digest));
    t.diagnostic(`ended after ${got.ms.toFixed(0)} ms: status ${got.status}, whole body: ${got.whole}`);
    assert.ok(got.status === 404 || !got.whole, 'never a whole 200 from a trickle');
    assert.ok(got.ms < 8000, `took ${got.ms.toFixed(0)} ms`);
  });
});
