import type { Logger } from '../../log/logger.js';
import { setBounded } from '../../util/bounded-map.js';

export interface LivenessInit {
  /** Longest wait for a probe's dial; default 1000 ms. */
  probeTimeoutMs?: number;
  /** First wait before probing a gone peer again, doubled per failure; default 1000 ms. */
  retryMs?: number;
  /** Longest wait between probes of a gone peer; default 60 s. */
  maxRetryMs?: number;
  /** Most gone peers remembered (the oldest is forgotten); default 10,000. */
  maxGone?: number;
}

export interface LivenessDeps {
  /** Opens a connection to peer `id` (resolves once connected); the connect event then clears it. */
  dial(id: string, signal: AbortSignal): Promise<void>;
  /** True while this node holds an open connection to peer `id`. */
  connected(id: string): boolean;
  log: Logger;
}

interface Gone {
  retryAt: number;
  failures: number;
}

/**
 * Which peers are gone, learnt from the connections themselves instead of asked on every lookup. A peer
 * whose last connection closes is gone at once (a killed process closes its sockets, so this takes
 * milliseconds), and is probed in the background: a dial that succeeds brings it back, one that fails
 * keeps it out and backs off. A peer that reconnects by itself is back at once.
 */
export class Liveness {
  readonly #deps: LivenessDeps;
  readonly #gone = new Map<string, Gone>();
  readonly #probing = new Set<string>();
  readonly #probeTimeoutMs: number;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #maxGone: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: LivenessDeps, init: LivenessInit = {}) {
    this.#deps = deps;
    this.#probeTimeoutMs = init.probeTimeoutMs ?? 1000;
    this.#retryMs = init.retryMs ?? 1000;
    this.#maxRetryMs = init.maxRetryMs ?? 60_000;
    this.#maxGone = init.maxGone ?? 10_000;
  }

  start(): void {
    this.#timer = setInterval(() => this.#probeDue(), this.#retryMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#gone.clear();
  }

  isGone(id: string): boolean {
    return this.#gone.has(id);
  }

  connected(id: string): void {
    this.#gone.delete(id);
  }

  disconnected(id: string): void {
    if (this.#deps.connected(id) || this.#gone.has(id)) return;
    setBounded(this.#gone, id, { retryAt: 0, failures: 0 }, this.#maxGone);
    void this.#probe(id);
  }

  #probeDue(): void {
    const now = Date.now();
    for (const [id, gone] of this.#gone) if (gone.retryAt <= now) void this.#probe(id);
  }

  async #probe(id: string): Promise<void> {
    const gone = this.#gone.get(id);
    if (gone === undefined || this.#probing.has(id)) return;
    this.#probing.add(id);
    try {
      await this.#deps.dial(id, AbortSignal.timeout(this.#probeTimeoutMs));
      if (this.#deps.connected(id)) this.#gone.delete(id);
    } catch (err) {
      gone.failures++;
      gone.retryAt = Date.now() + Math.min(this.#maxRetryMs, this.#retryMs * 2 ** gone.failures);
      if (gone.failures === 1)
        this.#deps.log.info({ peer: id, err }, 'peer is gone; probing it with backoff');
    } finally {
      this.#probing.delete(id);
    }
  }
}
