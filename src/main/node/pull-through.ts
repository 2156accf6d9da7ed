import type { RegistryConfig } from '../config/commands.js';
import { hostDirName } from '../containerd/hosts.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { OwnerElection } from '../pullthrough/owner.js';
import { PullThroughStore } from '../pullthrough/pull-through.js';
import { UpstreamClient } from '../pullthrough/upstream.js';
import { CredentialStore } from '../pullthrough/upstream-auth.js';
import type { EmbeddedStore } from '../store/embedded.js';
import type { ContentStore } from '../store/store.js';
import type { VerifyPool } from '../verify/pool.js';
import type { Mesh } from './mesh.js';

/** Pull-through: the upstream client and the store that fetches (once per digest) what nobody holds. */
export async function buildPullThrough(
  config: RegistryConfig,
  deps: {
    store: ContentStore;
    cache: EmbeddedStore;
    /** The guarded view over the cache: where a committed download is looked up again. */
    held: ContentStore;
    verifier: VerifyPool;
    mesh: Mesh | undefined;
    metrics: Metrics;
    log: Logger;
  },
): Promise<{ upstream: UpstreamClient; store: ContentStore }> {
  const credentials =
    config.registryCredentials === '' ? undefined : await CredentialStore.load(config.registryCredentials);
  const upstream = new UpstreamClient(
    { credentials, requests: deps.metrics.upstreamRequests },
    {
      mirroredRegistries: config.mirroredRegistries.map(hostDirName),
      privateHosts: config.upstreamPrivateHosts,
      insecureRegistries: config.insecureRegistries,
      timeoutMs: config.upstreamTimeout,
    },
  );
  const { mesh } = deps;
  // With P2P on, one node per digest fetches from upstream (rendezvous hashing over the members).
  const election = mesh === undefined ? undefined : await OwnerElection.create();
  const store = new PullThroughStore(
    {
      inner: deps.store,
      cache: deps.cache,
      held: deps.held,
      upstream,
      verifier: deps.verifier,
      router: mesh?.router,
      membership: mesh?.membership,
      election,
      auth: mesh?.auth,
      log: deps.log.child({ component: 'pull-through' }),
      metrics: deps.metrics,
    },
    {
      tagTimeoutMs: Math.min(2000, config.manifestTimeout),
      // A download is judged over windows of --idle-timeout: as long as any connection may go without
      // progress. Shorter windows cut owners that hold back a blob's last bytes while they check it.
      stallMs: config.idleTimeout,
      minBytesPerSecond: config.upstreamMinRate,
    },
  );
  return { upstream, store };
}
