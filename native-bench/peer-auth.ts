import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { silentLogger } from '../src/main/log/logger.js';
import { parseDigest } from '../src/main/oci/digest.js';
import { PeerAuth, type SignedRequest } from '../src/main/peer/peer-auth.js';
import { MIRRORED_HEADER } from '../src/main/peer/protocol.js';
import { staticBootstrap } from '../src/main/routing/bootstrap.js';
import { Libp2pRouter } from '../src/main/routing/libp2p/router.js';
import { MemoryStore } from '../src/main/store/memory.js';
import { startRegistry } from '../test/harness/http.js';
import { waitFor } from '../test/harness/process.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';

// The price of proving membership on every peer request: HEADs from a member, signed with its Ed25519
// identity and verified by the receiving node, against the same HEADs from a plain client, on one
// in-process registry with two real libp2p routers. Run: npm run bench -- auth

const REQUESTS = Number(process.env.BENCH_AUTH_REQUESTS ?? 4000);
const CONCURRENCY = 8;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function head(agent: Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'HEAD', headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Requests per second over REQUESTS HEADs, CONCURRENCY at a time; `headers` is called per request. */
async function rate(url: string, headers: () => Promise<Record<string, string>>): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let left = REQUESTS;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (left-- > 0) {
      const status = await head(agent, url, await headers());
      if (status !== 200) throw new Error(`HEAD answered ${status}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
  return REQUESTS / ((performance.now() - started) / 1000);
}

export async function peerAuthBench(): Promise<string[]> {
  const work = await shortTempDir('shoal-bench-auth');
  const routers: Libp2pRouter[] = [];
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
  try {
    const bytes = Buffer.alloc(4096, 1);
    const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    const store = new MemoryStore();
    await store.ingest(digest, [bytes]);
    for (const name of ['sender', 'receiver']) {
      const router = new Libp2pRouter(
        { log: silentLogger() },
        {
          host: '127.0.0.1',
          port: 0,
          dataDir: join(work, name),
          registryPort: 1,
          bootstrap: staticBootstrap(routers[0]?.addresses ?? []),
        },
      );
      await router.start();
      routers.push(router);
    }
    const [sender, receiver] = routers as [Libp2pRouter, Libp2pRouter];
    await waitFor('routers connected', async () => sender.ready() && receiver.ready(), 20_000);
    registry = await startRegistry(store, {}, {}, store, receiver);
    const path = `/v2/shoal/peer/blobs/${digest}`;
    const url = `${registry.url}${path}`;
    const auth = new PeerAuth({ router: sender });
    const signed: SignedRequest = {
      method: 'HEAD',
      target: path,
      range: undefined,
      mirrored: true,
      ownerFetch: false,
    };
    const peerHeaders = async () => ({
      ...(await auth.headers(receiver.selfId, signed)),
      [MIRRORED_HEADER]: 'true',
    });
    let plain = 0;
    let member = 0;
    for (let round = 0; round < ROUNDS; round++) {
      plain = Math.max(plain, await rate(url, async () => ({})));
      member = Math.max(member, await rate(url, peerHeaders));
    }
    const verifier = new PeerAuth({ router: receiver });
    const samples = 2000;
    let started = performance.now();
    const claims = [];
    for (let i = 0; i < samples; i++) claims.push(await auth.headers(receiver.selfId, signed));
    const signUs = ((performance.now() - started) * 1000) / samples;
    started = performance.now();
    for (const headers of claims) {
      await verifier.verify(
        {
          id: headers['x-shoal-peer'] ?? '',
          time: headers['x-shoal-peer-time'] ?? '',
          signature: headers['x-shoal-peer-signature'] ?? '',
        },
        signed,
      );
    }
    const verifyUs = ((performance.now() - started) * 1000) / samples;
    return [
      `peer request authentication (best of ${ROUNDS} rounds of ${REQUESTS} HEADs, ${CONCURRENCY} at a time; ratio is member / plain):`,
      `HEAD  plain ${plain.toFixed(0)} req/s  signed member ${member.toFixed(0)} req/s  ratio ${(member / plain).toFixed(2)}`,
      `sign ${signUs.toFixed(1)} µs  verify ${verifyUs.toFixed(1)} µs per request (Ed25519, one core)`,
    ];
  } finally {
    await registry?.stop();
    for (const router of routers) await router.stop();
    await removeDir(work);
  }
}
