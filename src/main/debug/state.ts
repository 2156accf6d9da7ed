import type { MemberView } from '../peer/membership.js';
import type { PreflightReport } from '../preflight/preflight.js';
import type { RecentRequest } from '../registry/ledger.js';
import type { Provider } from '../routing/router.js';

/** Who this node is and what it serves. */
export interface NodeView {
  version: string;
  startedAt: number;
  /** The libp2p peer id; undefined for a standalone mirror (`--bootstrap-kind none`). */
  peerId: string | undefined;
  /** Where peers reach its router. */
  routerAddresses: string[];
  /** Where clients and peers reach its registry API; its TLS listener's port, 0 without one. */
  registry: string;
  tlsPort: number;
  store: string;
  mirroredRegistries: string[];
  upstreamFallback: boolean;
  ready: boolean;
}

export interface RoutingView {
  tableSize: number;
  advertised: { digest: number; tag: number };
  lastSync: { advertised: number; withdrawn: number; total: number; ms: number } | undefined;
  alone: boolean;
}

/** A member as the page lists it: its health, and the registry address it announced. */
export type MemberRow = MemberView & { registry: string | undefined };

/** Everything the debug page shows, read from the node's parts at the moment it is asked. */
export interface DebugState {
  at: number;
  node: NodeView;
  members: MemberRow[];
  routing: RoutingView | undefined;
  requests: { counted: boolean; recent: RecentRequest[]; lastHit: RecentRequest | undefined };
  preflight: PreflightReport | undefined;
}

/** What the page reads from the node; each part is asked when a page or a test asks. */
export interface DebugSources {
  node(): Promise<NodeView>;
  members(): MemberRow[];
  routing(): RoutingView | undefined;
  /** The last requests; undefined when requests are not counted (`--request-metrics=false`). */
  requests(): { recent: RecentRequest[]; lastHit: RecentRequest | undefined } | undefined;
  preflight(): PreflightReport | undefined;
  /** Peers that advertised `key`; undefined for a standalone mirror. */
  lookup: ((key: string, signal: AbortSignal) => AsyncIterable<Provider>) | undefined;
  /** Whether this node itself holds what `key` names (a digest, or `<registry>/<repo>:<tag>`). */
  holds(key: string): Promise<boolean>;
}

export async function debugState(sources: DebugSources): Promise<DebugState> {
  const requests = sources.requests();
  return {
    at: Date.now(),
    node: await sources.node(),
    members: sources.members(),
    routing: sources.routing(),
    requests: { counted: requests !== undefined, recent: requests?.recent ?? [], lastHit: requests?.lastHit },
    preflight: sources.preflight(),
  };
}
