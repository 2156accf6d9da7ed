import type { RegistryConfig } from '../config/commands.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { Membership } from '../peer/membership.js';
import { MirroringStore } from '../peer/mirroring-store.js';
import { PeerAuth } from '../peer/peer-auth.js';
import { Advertiser } from '../routing/advertiser.js';
import type { Libp2pRouter } from '../routing/libp2p/router.js';
import type { ContentStore } from '../store/store.js';
import type { VerifyPool } from '../verify/pool.js';
import { bootstrapperFor } from './parts.js';

/** The P2P side of a node: the router, proof of membership, the peer-fetching store and the advertiser. */
export interface Mesh {
  router: Libp2pRouter;
  auth: PeerAuth;
  /** Who is up and who is set aside: the one view the peer fetch and the owner election share. */
  membership: Membership;
  /** `held`, plus what peers hold. */
  store: ContentStore;
  advertiser: Advertiser;
}

/** Builds the mesh (nothing started yet; the node starts the router once the registry listens). */
export async function buildMesh(
  config: RegistryConfig,
  deps: {
    held: ContentStore;
    verifier: VerifyPool;
    metrics: Metrics;
    psk: Uint8Array | undefined;
    registryPort: () => number;
    log: Logger;
  },
): Promise<Mesh> {
  const { held, log } = deps;
  // libp2p is loaded only when P2P is on, so `shoal configuration` in an init container starts fast.
  const { Libp2pRouter } = await import('../routing/libp2p/router.js');
  const router = new Libp2pRouter(
    { log: log.child({ component: 'router' }) },
    {
      host: config.routerAddr.host ?? '0.0.0.0',
      port: config.routerAddr.port,
      dataDir: config.dataDir,
      registryPort: deps.registryPort,
      bootstrap: bootstrapperFor(config),
      refreshIntervalMs: config.routerRefreshInterval,
      joinTimeoutMs: config.routerJoinTimeout,
      psk: deps.psk,
    },
  );
  // Its id is known from here on: a request that comes before the router has started elects as a lone node.
  await router.load();
  if (deps.psk === undefined) {
    log.warn(
      { flag: '--p2p-psk-file' },
      'no private network key: any process that reaches the router port can join this cluster',
    );
  }
  const auth = new PeerAuth({ router });
  const membership = new Membership(
    { router, setAside: deps.metrics.peerQuarantines },
    { corruptMs: config.peerCorruptQuarantine },
  );
  const store = new MirroringStore(
    {
      local: held,
      router,
      auth,
      membership,
      verifier: config.verifyRemote ? deps.verifier : undefined,
      metrics: deps.metrics,
      log: log.child({ component: 'mirror' }),
    },
    {
      resolveTimeoutMs: config.mirrorResolveTimeout,
      resolveTimeoutMaxMs: config.mirrorResolveTimeoutMax,
      lookupRefreshMs: config.mirrorLookupRefresh,
      maxAttempts: config.mirrorResolveRetries,
      chunkBytes: config.streamChunkBytes,
    },
  );
  const { metrics } = deps;
  const advertiser = new Advertiser(
    {
      store: held,
      router,
      log: log.child({ component: 'advertiser' }),
      metrics: { keys: metrics.advertiseKeys, duration: metrics.advertiseDuration },
    },
    { readyWaitMs: config.routerJoinTimeout },
  );
  metrics.watchMembers(() => membership.size);
  metrics.watchSetAside(() => membership.asideByReason());
  metrics.watchRouting(
    () => router.tableSize(),
    () => advertiser.advertisedByType(),
  );
  return { router, auth, membership, store, advertiser };
}
