import type { Provider, Router } from '../routing/router.js';

export interface LookupCacheInit {
  /** How long a finished lookup that found providers is reused; default 5000 ms. */
  ttlMs?: number;
  /** How long a lookup that found nobody is reused, so repeated misses do not flood the DHT; default 1000 ms. */
  negativeTtlMs?: number;
  /** Longest a shared lookup runs; default 5000 ms. */
  lookupTimeoutMs?: number;
  /** Most keys remembered; default 10,000. */
  maxEntries?: number;
}

/** One DHT lookup, shared by every concurrent asker: providers are kept as found and replayed to each. */
class SharedLookup {
  readonly providers: Provider[] = [];
  done = false;
  finishedAt = 0;
  #wake: Array<() => void> = [];

  constructor(router: Router, key: string, timeoutMs: number) {
    void this.#run(router, key, timeoutMs);
  }

  async #run(router: Router, key: string, timeoutMs: number): Promise<void> {
    try {
      for await (const provider of router.lookup(key, AbortSignal.timeout(timeoutMs))) {
        this.providers.push(provider);
        this.#notify();
      }
    } catch {
      // A timed-out or failed lookup ends with what it found.
    } finally {
      this.done = true;
      this.finishedAt = Date.now();
      this.#notify();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }

  async *replay(signal: AbortSignal): AsyncIterable<Provider> {
    for (let i = 0; !signal.aborted; ) {
      if (i < this.providers.length) {
        yield this.providers[i++] as Provider;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        this.#wake.push(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }
}

/**
 * Single-flight lookups with a short cache per key, in front of a Router: a burst of requests for one
 * layer (every containerd on a node pulling it) costs one DHT query.
 */
export class LookupCache {
  readonly #router: Router;
  readonly #entries = new Map<string, SharedLookup>();
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #lookupTimeoutMs: number;
  readonly #maxEntries: number;

  constructor(deps: { router: Router }, init: LookupCacheInit = {}) {
    this.#router = deps.router;
    this.#ttlMs = init.ttlMs ?? 5000;
    this.#negativeTtlMs = init.negativeTtlMs ?? 1000;
    this.#lookupTimeoutMs = init.lookupTimeoutMs ?? 5000;
    this.#maxEntries = init.maxEntries ?? 10_000;
  }

  lookup(key: string, signal: AbortSignal): AsyncIterable<Provider> {
    let entry = this.#entries.get(key);
    if (entry?.done) {
      const ttl = entry.providers.length > 0 ? this.#ttlMs : this.#negativeTtlMs;
      if (Date.now() - entry.finishedAt > ttl) entry = undefined;
    }
    if (entry === undefined) {
      if (this.#entries.size >= this.#maxEntries) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
      entry = new SharedLookup(this.#router, key, this.#lookupTimeoutMs);
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry.replay(signal);
  }

  /** Forgets a key, e.g. after a provider died mid-body. */
  forget(key: string): void {
    this.#entries.delete(key);
  }

  /**
   * Forgets a key whose lookup has finished (its providers all failed), but keeps one still running: a
   * request that gave up waiting must not throw away a slow lookup, or on a loaded node every request
   * would start a new one and none would ever finish in time.
   */
  forgetFinished(key: string): void {
    if (this.#entries.get(key)?.done === true) this.#entries.delete(key);
  }
}
