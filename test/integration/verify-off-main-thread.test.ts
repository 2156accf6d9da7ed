import assert from 'node:assert/strict';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/main/log/logger.js';
import { Metrics } from '../../src/main/metrics/metrics.js';
import type { Digest } from '../../src/main/oci/digest.js';
import { MirroringStore } from '../../src/main/peer/mirroring-store.js';
import { staticBootstrap } from '../../src/main/routing/bootstrap.js';
import { Libp2pRouter } from '../../src/main/routing/libp2p/router.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import type { VerifyPool } from '../../src/main/verify/pool.js';
import { startRegistry } from '../harness/http.js';
import { freePort, run } from '../harness/process.js';
import { seededEmbeddedBlob } from '../harness/seeded-store.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';
import { startVerifier } from '../harness/verifier.js';

const GiB = 1 << 30;
const DELAY_P99_LIMIT_MS = 50;

// This process is a node that holds nothing: it finds a 1 GiB blob on a peer (a real shoal process), streams
// it to curl and checks its digest in the worker pool. Its event loop, which also routes and streams, must
// stay responsive the whole time: hashing 1 GiB on it would block it for about a second.
describe('hashing runs off the main thread', { timeout: 300_000 }, () => {
  let dir: string;
  let peer: ShoalProcess;
  let digest: Digest;
  let verifier: VerifyPool;
  let router: Libp2pRouter;
  const metrics = new Metrics();
  let node: Awaited<ReturnType<typeof startRegistry>>;

  before(async () => {
    dir = await shortTempDir('shoal-elu');
    digest = await seededEmbeddedBlob(join(dir, 'peer'), 'off-main-thread', GiB);
    // A real P2P pair: the peer must prove this node a member, and only a libp2p router can.
    const [routerPort, peerRouterPort, registryPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
    ]);
    router = new Libp2pRouter(
      { log: silentLogger() },
      {
        host: '127.0.0.1',
        port: routerPort,
        dataDir: join(dir, 'self'),
        registryPort,
        bootstrap: staticBootstrap([`/ip4/127.0.0.1/tcp/${peerRouterPort}`]),
      },
    );
    await router.start();
    peer = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(dir, 'peer'),
      '--router-addr',
      `127.0.0.1:${peerRouterPort}`,
      '--bootstrap-kind',
      'static',
      '--static-bootstrap-peers',
      `/ip4/127.0.0.1/tcp/${routerPort}`,
    ]);
    await peer.start();
    await peer.waitReady();
    verifier = await startVerifier({ threads: 1 }, metrics);
    const local = new MemoryStore();
    const store = new MirroringStore({ local, router, verifier, metrics });
    node = await startRegistry(store, {}, { port: registryPort }, local, router);
  });

  after(async () => {
    await node?.stop();
    await router?.stop();
    await verifier?.stop();
    await peer?.stop();
    await removeDir(dir);
  });

  it(`keeps event-loop delay p99 under ${DELAY_P99_LIMIT_MS} ms while a 1 GiB peer blob is verified`, async (t) => {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    const started = performance.now();
    const elu = performance.eventLoopUtilization();
    delay.enable();
    // curl runs in its own process, so only shoal's own work is on this event loop.
    const out = await run('curl', [
      '-sS',
      '--fail',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download}',
      '--location',
      `${node.url}/v2/big/blobs/${digest}`,
    ]);
    delay.disable();
    const seconds = (performance.now() - started) / 1000;
    const used = performance.eventLoopUtilization(elu);
    assert.equal(Number(out.trim()), GiB, 'the whole body arrived, so its digest matched');
    const p99 = delay.percentile(99) / 1e6;
    t.diagnostic(
      `1 GiB in ${seconds.toFixed(2)} s (${(1 / seconds).toFixed(2)} GiB/s); event-loop delay p99 ${p99.toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms; main-thread utilisation ${(used.utilization * 100).toFixed(0)}%`,
    );
    assert.ok(p99 < DELAY_P99_LIMIT_MS, `event-loop delay p99 ${p99.toFixed(1)} ms`);
    // Every byte went through a worker: the pool's own count, not the main thread's.
    const text = await metrics.render();
    assert.match(text, new RegExp(`shoal_verify_bytes_total\\{kind="stream"\\} ${GiB}\\b`));
    assert.match(text, /shoal_verify_total\{kind="stream",result="OK"\} 1\b/);
  });
});
