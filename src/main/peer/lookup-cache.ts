import type { Provider, Router } from '../routing/router.js';
import { setBounded } from '../util/bounded-map.js';

/** What a lookup cache asks of the router. */
type Lookups = Pick<Router, 'lookup' | 'current'>;

export interface LookupCacheInit {
  /**
   * Age after which a key's providers are looked up again, in the background: until the new lookup ends,
   * the last providers found are still handed out, so a request never waits on a refresh. Default 5000 ms
   * (`--mirror-lookup-refresh`).
   */
  refreshMs?: number;
  /** How long a lookup that found nobody is reused, so repeated misses do not flood the DHT; default 1000 ms. */
  negativeTtlMs?: number;
  /** Longest a shared lookup runs; default 5000 ms. */
  lookupTimeoutMs?: number;
  /** Most keys remembered (least recently asked for goes first); default 10,000. */
  maxEntries?: number;
}

export interface LookupCacheDeps {
  router: Lookups;
  /** Told of every DHT lookup this cache starts, when it ends: ms to its first provider (undefined: none). */
  onLookup?: (firstProviderMs: number | undefined, totalMs: number) => void;
}

/** One DHT lookup, shared by every concurrent asker: providers are kept as found and replayed to each. */
class SharedLookup {
  readonly providers: Provider[] = [];
  done = false;
  /** Ended on its own (not by the time bound): finding nobody then means nobody advertises the key. */
  exhausted = false;
  /** Milliseconds from the start to the first provider found. */
  firstMs: number | undefined;
  /** Milliseconds from the start to the end. */
  totalMs = 0;
  #wake: Array<() => void> = [];

  constructor(router: Lookups, key: string, timeoutMs: number, onEnd: (lookup: SharedLookup) => void) {
    void this.#run(router, key, timeoutMs, onEnd);
  }

  async #run(
    router: Lookups,
    key: string,
    timeoutMs: number,
    onEnd: (lookup: SharedLookup) => void,
  ): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    const started = performance.now();
    try {
      for await (const provider of router.lookup(key, signal)) {
        this.firstMs ??= performance.now() - started;
        this.providers.push(provider);
        this.#notify();
      }
      this.exhausted = !signal.aborted;
    } catch {
      // A timed-out or failed lookup ends with what it found.
    } finally {
      this.done = true;
      this.totalMs = performance.now() - started;
      onEnd(this);
      this.#notify();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }

  /** Resolves when a provider is found or the lookup ends, or when `signal` aborts. */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const onAbort = (): void => resolve();
      this.#wake.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** What is known of one key. */
interface Entry {
  /** The providers the last lookup that found any handed out, less those that failed since. */
  providers: Provider[];
  /** When a lookup for the key last ended (refreshes are due `refreshMs` after it). */
  checkedAt: number;
  /** Whether that lookup ended having found nobody, the search exhausted. */
  missed: boolean;
  running: SharedLookup | undefined;
  /** Rotates which cached provider is offered first, spreading a hot key's load over its holders. */
  turn: number;
  /** Its last lookup that ended found providers (some may have failed since). */
  held: boolean;
}

/**
 * Single-flight lookups with a per-key memory in front of a Router. A burst of requests for one layer costs
 * one DHT query; a key asked for again is answered from the providers found last time at once, while a
 * lookup refreshes them in the background once they are `refreshMs` old (stale-while-revalidate). A lookup
 * that outlives the request that started it still fills the entry for the next one.
 */
export class LookupCache {
  readonly #router: Lookups;
  readonly #onLookup: LookupCacheDeps['onLookup'];
  readonly #entries = new Map<string, Entry>();
  readonly #refreshMs: number;
  readonly #negativeTtlMs: number;
  readonly #lookupTimeoutMs: number;
  readonly #maxEntries: number;

  constructor(deps: LookupCacheDeps, init: LookupCacheInit = {}) {
    this.#router = deps.router;
    this.#onLookup = deps.onLookup;
    this.#refreshMs = init.refreshMs ?? 5000;
    this.#negativeTtlMs = init.negativeTtlMs ?? 1000;
    this.#lookupTimeoutMs = init.lookupTimeoutMs ?? 5000;
    this.#maxEntries = init.maxEntries ?? 10_000;
  }

  lookup(key: string, signal: AbortSignal): AsyncIterable<Provider> {
    const entry = this.#entry(key);
    this.#refresh(key, entry);
    const first = entry.turn++ % Math.max(1, entry.providers.length);
    const cached = [...entry.providers.slice(first), ...entry.providers.slice(0, first)];
    return this.#replay(cached, entry.running, signal);
  }

  /** Starts a lookup of `key` now if one is due, so a request that follows finds its providers known. */
  warm(key: string): void {
    this.#refresh(key, this.#entry(key));
  }

  /** Starts a lookup unless one runs, or the last one is fresh (providers found, or a recent miss). */
  #refresh(key: string, entry: Entry): void {
    if (entry.running !== undefined) return;
    const age = Date.now() - entry.checkedAt;
    // Providers the router knows are gone count for nothing: with every one of them gone (holders
    // restarting), the key is looked up again at once, not when the entry is `refreshMs` old (issue 26).
    const due =
      entry.providers.length > 0
        ? age >= this.#refreshMs || !entry.providers.some((each) => this.#router.current(each) !== undefined)
        : !entry.missed || age >= this.#negativeTtlMs;
    if (due) this.#start(key, entry);
  }

  /**
   * Whether `key` is known to be held in the cluster: its last lookup found providers, though every one of
   * them may have failed since. A request for it is worth a longer wait for the next lookup.
   */
  held(key: string): boolean {
    return this.#entries.get(key)?.held === true;
  }

  /** `provider` failed for `key` (gone, or answered without it): it is not handed out for the key again. */
  failed(key: string, providerId: string): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) entry.providers = entry.providers.filter((each) => each.id !== providerId);
  }

  /** Forgets a key's providers (a provider died mid-body); a lookup still running is kept. */
  forget(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    entry.providers = [];
    entry.missed = false;
  }

  #entry(key: string): Entry {
    // Least recently asked for goes first: the key moves to the end.
    const entry = this.#entries.get(key) ?? {
      providers: [],
      checkedAt: 0,
      missed: false,
      running: undefined,
      turn: 0,
      held: false,
    };
    setBounded(this.#entries, key, entry, this.#maxEntries);
    return entry;
  }

  #start(key: string, entry: Entry): void {
    entry.running = new SharedLookup(this.#router, key, this.#lookupTimeoutMs, (ended) => {
      entry.running = undefined;
      entry.checkedAt = Date.now();
      if (ended.providers.length > 0) {
        entry.providers = [...ended.providers];
        entry.missed = false;
        entry.held = true;
      } else if (ended.exhausted) {
        // Nobody advertises the key any more: the old providers withdrew it.
        entry.providers = [];
        entry.missed = true;
        entry.held = false;
      }
      this.#onLookup?.(ended.firstMs, ended.totalMs);
    });
  }

  async *#replay(
    cached: Provider[],
    running: SharedLookup | undefined,
    signal: AbortSignal,
  ): AsyncIterable<Provider> {
    const given = new Set<string>();
    for (const remembered of cached) {
      if (signal.aborted) return;
      // Re-checked against what the router knows now: a provider gone since is skipped, and one that
      // restarted is reached where it serves now, not where the lookup found it.
      const provider = this.#router.current(remembered);
      if (provider === undefined) continue;
      given.add(provider.id);
      yield provider;
    }
    if (running === undefined) return;
    for (let i = 0; !signal.aborted; ) {
      const provider = running.providers[i];
      if (provider !== undefined) {
        i++;
        if (given.has(provider.id)) continue;
        given.add(provider.id);
        yield provider;
        continue;
      }
      if (running.done) return;
      await running.changed(signal);
    }
  }
}
