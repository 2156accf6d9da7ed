import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../src/main/metrics/metrics.js';
import { type Digest, parseDigest } from '../../src/main/oci/digest.js';
import { MirroringStore } from '../../src/main/peer/mirroring-store.js';
import { MemoryNetwork, MemoryRouter } from '../../src/main/routing/memory.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import type { ContentOrigin, ContentStore } from '../../src/main/store/store.js';
import type { VerifyPool } from '../../src/main/verify/pool.js';
import { startRegistry } from '../harness/http.js';
import { freePort } from '../harness/process.js';
import { startVerifier } from '../harness/verifier.js';

const NS = '127.0.0.1:5000';

const digestOf = (bytes: Buffer): Digest =>
  parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

/** How a fake peer answers one request: the whole response, written at once. */
type Answer = (method: string, path: string) => Buffer;

/**
 * A member that speaks HTTP the way it likes, from a raw socket: it answers each request with what
 * `answer` gives, in a single write, and closes. It records what it was asked.
 */
class RawPeer {
  readonly asked: string[] = [];
  readonly #server: Server;
  #router: MemoryRouter | undefined;

  constructor(answer: Answer) {
    this.#server = createServer((socket: Socket) => {
      let head = '';
      socket.on('data', (chunk) => {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        const [method = '', path = ''] = head.split(' ');
        this.asked.push(`${method} ${path.split('?')[0]}`);
        socket.end(answer(method, path));
      });
      socket.on('error', () => undefined);
    });
  }

  get router(): MemoryRouter {
    if (this.#router === undefined) throw new Error('not started');
    return this.#router;
  }

  /** Listens, joins `network` as `id`, and advertises `keys`. */
  async start(network: MemoryNetwork, id: string, keys: readonly string[]): Promise<void> {
    const port = await freePort();
    await new Promise<void>((resolve) => this.#server.listen(port, '127.0.0.1', resolve));
    this.#router = new MemoryRouter({ network }, { id, registry: `http://127.0.0.1:${port}` });
    await this.#router.start();
    await this.#router.advertise(keys);
  }

  async stop(): Promise<void> {
    await this.#router?.stop();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A node of `network` on a port of its own: it serves `local`, or what `serve` builds on it and its router. */
async function startMember(
  network: MemoryNetwork,
  id: string,
  local: ContentStore,
  serve: (router: MemoryRouter) => ContentStore = () => local,
): Promise<{ router: MemoryRouter; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const router = new MemoryRouter({ network }, { id, registry: `http://127.0.0.1:${port}` });
  await router.start();
  const server = await startRegistry(serve(router), {}, { port }, local, router);
  return {
    router,
    url: server.url,
    stop: async () => {
      await server.stop();
      await router.stop();
    },
  };
}

function response(status: number, headers: Record<string, string | number>, body = Buffer.alloc(0)): Buffer {
  const lines = [`HTTP/1.1 ${status} X`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`), body]);
}

const blobHeaders = (digest: Digest, length: number) => ({
  'Content-Type': 'application/octet-stream',
  'Docker-Content-Digest': digest,
  'Content-Length': length,
});

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
    ghost: new RawPeer(() => response(404, { 'Content-Length': 0 })),
    swapper: new RawPeer((method) =>
      response(200, blobHeaders(otherDigest, other.length), method === 'HEAD' ? undefined : other),
    ),
    overlong: new RawPeer((method) =>
      response(
        200,
        blobHeaders(onlyDigest, only.length),
        method === 'HEAD' ? undefined : Buffer.concat([only, Buffer.alloc(1000, 'x')]),
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
    const liar = new RawPeer(() => response(200, blobHeaders(otherDigest, other.length)));
    await liar.start(network, 'lone-swapper', [loneDigest]);
    try {
      const before = await failures('wrong_digest');
      assert.equal((await getBlob(loneDigest, 'HEAD')).status, 404);
      assert.equal(await failures('wrong_digest'), before + 1);
      // What the request's log line carries as `why`: the providers found, and what each one did.
      const origin: ContentOrigin = { registry: NS, repository: 'app', kind: 'blobs', body: true };
      assert.equal(await store.stat(loneDigest, origin), undefined);
      assert.equal(
        origin.why,
        'GET found 1 provider; 1 passed over (set aside); HEAD found 1 provider; 1 passed over (set aside)',
      );
      const fresh = Buffer.alloc(8 << 10, 'f');
      const asked: ContentOrigin = { registry: NS, repository: 'app', kind: 'blobs' };
      assert.equal(await store.stat(digestOf(fresh), asked), undefined);
      assert.match(asked.why ?? '', /^HEAD found no provider in \d+ ms$/);
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
