import type { Logger } from '../log/logger.js';
import { LatencyTracker } from './latency.js';

export interface ResolveWaitInit {
  /** Shortest wait for a first provider; default 20 ms (`--mirror-resolve-timeout`, Spegel's default). */
  floorMs?: number;
  /** Longest wait, and the wait until enough lookups were seen to judge; default 500 ms (`--mirror-resolve-timeout-max`). */
  capMs?: number;
  /** The wait is this multiple of the p99 time to a first provider; default 3. */
  factor?: number;
}

/** Lookups seen before the observed distribution is trusted over the cap. */
const MIN_SAMPLES = 8;

/**
 * How long a request waits for a lookup's first provider, from the times recent lookups took: a few times
 * their p99, never under the floor or over the cap. A fixed 20 ms sat at the median on a busy node, so a
 * lookup that would have found a peer a moment later became a 404 and a registry pull. The wait matters
 * only for a key this node has not looked up lately: one asked for again is answered from the lookup cache
 * at once, and a lookup for a key nobody holds ends when the search does.
 */
export class ResolveWait {
  readonly #samples = new LatencyTracker(128);
  readonly #floorMs: number;
  readonly #capMs: number;
  readonly #factor: number;
  readonly #log: Logger | undefined;
  #count = 0;
  #current: number;
  #logged = 0;

  constructor(deps: { log?: Logger | undefined }, init: ResolveWaitInit = {}) {
    this.#log = deps.log;
    this.#floorMs = init.floorMs ?? 20;
    this.#capMs = Math.max(this.#floorMs, init.capMs ?? 500);
    this.#factor = init.factor ?? 3;
    this.#current = this.#capMs;
  }

  /** The wait for a first provider now, in ms. */
  get ms(): number {
    return this.#current;
  }

  /** The longest wait (`--mirror-resolve-timeout-max`). */
  get capMs(): number {
    return this.#capMs;
  }

  /** Records a lookup's time to its first provider; a lookup that found nobody says nothing about it. */
  record(firstProviderMs: number | undefined): void {
    if (firstProviderMs === undefined) return;
    this.#samples.record(firstProviderMs);
    if (++this.#count < MIN_SAMPLES) return;
    const p99 = this.#samples.quantile(0.99, this.#capMs);
    this.#current = Math.min(this.#capMs, Math.max(this.#floorMs, Math.ceil(p99 * this.#factor)));
    // Logged when it moves by half or more since last logged, so a busy node's log shows why it waits longer.
    if (this.#logged === 0 || this.#current >= this.#logged * 1.5 || this.#current <= this.#logged / 1.5) {
      this.#log?.info(
        {
          resolveTimeoutMs: this.#current,
          lookupP99Ms: Math.round(p99),
          floorMs: this.#floorMs,
          capMs: this.#capMs,
        },
        'wait for a first provider set from observed lookups',
      );
      this.#logged = this.#current;
    }
  }
}
