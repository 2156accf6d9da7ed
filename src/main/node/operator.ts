import type { RegistryConfig } from '../config/commands.js';
import { ContainerdClient } from '../containerd/client.js';
import { hostDirName } from '../containerd/hosts.js';
import type { DebugSources, MemberRow, NodeView } from '../debug/state.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { parseDigest } from '../oci/digest.js';
import { parseImageName } from '../oci/reference.js';
import type { Observed } from '../preflight/checks.js';
import { observe } from '../preflight/observe.js';
import { Preflight } from '../preflight/preflight.js';
import { RequestLedger } from '../registry/ledger.js';
import type { ContentStore } from '../store/store.js';
import { httpOrigin } from '../util/url.js';
import { VERSION } from '../version.js';
import type { Mesh } from './mesh.js';

// What the operator sees of a node: its requests counted (the ledger), its setup checked (preflight), and
// the debug page that shows both with the node's view of its cluster.

/** The request ledger, or undefined when requests are not counted (`--request-metrics=false`). */
export function buildLedger(
  config: RegistryConfig,
  deps: { metrics: Metrics; log: Logger; inFlight: () => number },
): RequestLedger | undefined {
  if (!config.requestMetrics) return undefined;
  return new RequestLedger(
    { recorder: deps.metrics.requests(deps.inFlight), log: deps.log.child({ component: 'request' }) },
    { mirroredRegistries: config.mirroredRegistries.map(hostDirName) },
  );
}

/** The settings preflight reads: the registry's address and containerd flags (`shoal doctor` takes the same). */
export type PreflightConfig = Pick<
  RegistryConfig,
  | 'registryAddr'
  | 'store'
  | 'containerdSock'
  | 'containerdNamespace'
  | 'containerdContentPath'
  | 'containerdRegistryConfigPath'
  | 'containerdConfig'
  | 'mirroredRegistries'
  | 'mirrorTargets'
  | 'resolveTags'
  | 'storeTimeout'
>;

/** What a hosts.toml must name to send pulls to this node: `--mirror-targets`, else `--registry-addr`. */
export function mirrorTargetsOf(config: PreflightConfig): Observed['targets'] {
  if (config.mirrorTargets.length > 0) return { origins: config.mirrorTargets.map((url) => url.href) };
  const { host, port } = config.registryAddr;
  // Bound to every interface: containerd may name this node by any of its addresses.
  if (host === undefined || host === '0.0.0.0' || host === '::') return { port };
  return { origins: [httpOrigin(host, port)] };
}

/** Looks at containerd over a connection of its own (the store may have none: `--store auto` fell back). */
export function preflightObserver(
  config: PreflightConfig,
  serving: 'containerd' | 'embedded',
): { observe: () => Promise<Observed>; close(): void } {
  const client = new ContainerdClient({
    socket: config.containerdSock,
    namespace: config.containerdNamespace,
    timeoutMs: config.storeTimeout,
  });
  return {
    observe: () =>
      observe(client, {
        store: { requested: config.store, serving },
        socket: config.containerdSock,
        namespace: config.containerdNamespace,
        contentPath: config.containerdContentPath,
        configDir: config.containerdRegistryConfigPath,
        configFile: config.containerdConfig,
        mirroredRegistries: config.mirroredRegistries.map(hostDirName),
        targets: mirrorTargetsOf(config),
        resolveTags: config.resolveTags,
      }),
    close: () => client.close(),
  };
}

/** The node's preflight, run at start and every 5 minutes. */
export function buildPreflight(
  config: RegistryConfig,
  deps: { serving: 'containerd' | 'embedded'; metrics: Metrics; log: Logger },
): { preflight: Preflight; stop(): Promise<void> } {
  const observer = preflightObserver(config, deps.serving);
  const preflight = new Preflight(
    { observe: observer.observe, log: deps.log.child({ component: 'preflight' }), metrics: deps.metrics },
    { strict: config.strictPreflight },
  );
  return {
    preflight,
    stop: async () => {
      await preflight.stop();
      observer.close();
    },
  };
}

/** Where the debug page reads a node's state: every part asked at the moment the page asks. */
export function debugSources(
  config: RegistryConfig,
  parts: {
    startedAt: number;
    ports: () => { registry: number; tls: number };
    ready: () => Promise<boolean>;
    store: ContentStore;
    held: ContentStore;
    mesh: Mesh | undefined;
    ledger: RequestLedger | undefined;
    preflight: Preflight;
  },
): DebugSources {
  const { mesh, ledger, held } = parts;
  const router = mesh?.router;
  const started = (): boolean => {
    try {
      return router !== undefined && router.peerId !== '';
    } catch {
      return false;
    }
  };
  return {
    node: async (): Promise<NodeView> => ({
      version: VERSION,
      startedAt: parts.startedAt,
      peerId: started() ? router?.peerId : undefined,
      routerAddresses: started() ? (router?.addresses ?? []) : [],
      registry: `${config.registryAddr.host ?? '*'}:${parts.ports().registry}`,
      tlsPort: parts.ports().tls,
      store: parts.store.kind,
      mirroredRegistries: config.mirroredRegistries.map(hostDirName),
      upstreamFallback: config.upstreamFallback,
      ready: await parts.ready(),
    }),
    members: (): MemberRow[] =>
      (mesh?.membership.view() ?? []).map((member) => ({
        ...member,
        registry: router?.current({ id: member.id, registry: '' })?.registry || undefined,
      })),
    routing: () =>
      mesh === undefined || !started()
        ? undefined
        : {
            tableSize: mesh.router.tableSize(),
            advertised: mesh.advertiser.advertisedByType(),
            lastSync: mesh.advertiser.lastSync,
            alone: mesh.router.alone(),
          },
    requests: () => (ledger === undefined ? undefined : { recent: ledger.recent(), lastHit: ledger.lastHit }),
    preflight: () => parts.preflight.report,
    lookup: router === undefined ? undefined : (key, signal) => router.lookup(key, signal),
    holds: async (key) => {
      if (key.startsWith('sha256:')) return (await held.stat(parseDigest(key))) !== undefined;
      const { registry, repository, tag } = parseImageName(key);
      return (await held.resolve(registry, repository, tag)) !== undefined;
    },
  };
}
