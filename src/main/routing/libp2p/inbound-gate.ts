import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface';

/**
 * Limits on connections to the router port that have not finished their handshake. libp2p's defaults let
 * 10 of them in at once, each for up to 10 s, from anywhere: 10 silent sockets from one pod stopped every
 * new libp2p connection, so new and restarting nodes could not join (issue 26).
 */
export const INBOUND_LIMITS = {
  /** Connections mid-handshake across all hosts (libp2p's default: 10). */
  pending: 64,
  /** Longest an inbound handshake (key, encryption, muxer) may take (libp2p's default: 10 s). */
  upgradeTimeoutMs: 3000,
  /** Connections mid-handshake from one address. A node dials another once; 8 leaves room for restarts. */
  pendingPerHost: 8,
} as const;

/** The IP address a connection comes from, or undefined for a non-IP address. */
export function remoteIp(connection: MultiaddrConnection): string | undefined {
  return connection.remoteAddr.getComponents().find((part) => part.name === 'ip4' || part.name === 'ip6')
    ?.value;
}

/**
 * A connection gater that refuses an inbound connection when its address already has `perHost` connections
 * mid-handshake. A connection stops counting when its handshake completes, when it closes, or once the
 * upgrade timeout (plus a second) has passed, whichever comes first.
 */
export class InboundGate implements ConnectionGater {
  readonly #pending = new Map<string, Set<MultiaddrConnection>>();
  readonly #timers = new Map<MultiaddrConnection, NodeJS.Timeout>();
  readonly #perHost: number;
  readonly #holdMs: number;
  #refused = 0;

  constructor(
    perHost: number = INBOUND_LIMITS.pendingPerHost,
    holdMs = INBOUND_LIMITS.upgradeTimeoutMs + 1000,
  ) {
    this.#perHost = perHost;
    this.#holdMs = holdMs;
  }

  /** Inbound connections refused for their address's limit since start. */
  get refused(): number {
    return this.#refused;
  }

  /** Connections mid-handshake from `host`. */
  pendingFrom(host: string): number {
    return this.#pending.get(host)?.size ?? 0;
  }

  denyInboundConnection(connection: MultiaddrConnection): boolean {
    const host = remoteIp(connection);
    if (host === undefined) return false;
    const pending = this.#pending.get(host) ?? new Set<MultiaddrConnection>();
    if (pending.size >= this.#perHost) {
      this.#refused++;
      return true;
    }
    pending.add(connection);
    this.#pending.set(host, pending);
    const release = (): void => this.#release(host, connection);
    connection.addEventListener('close', release, { once: true });
    const timer = setTimeout(release, this.#holdMs);
    timer.unref();
    this.#timers.set(connection, timer);
    return false;
  }

  denyInboundUpgradedConnection(_peer: PeerId, connection: MultiaddrConnection): boolean {
    const host = remoteIp(connection);
    if (host !== undefined) this.#release(host, connection);
    return false;
  }

  #release(host: string, connection: MultiaddrConnection): void {
    clearTimeout(this.#timers.get(connection));
    this.#timers.delete(connection);
    const pending = this.#pending.get(host);
    if (pending === undefined || !pending.delete(connection)) return;
    if (pending.size === 0) this.#pending.delete(host);
  }
}
