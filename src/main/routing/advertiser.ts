import type { Logger } from '../log/logger.js';
import { type CounterLike, type LabeledHistogramLike, NO_COUNTER } from '../metrics/families.js';
import type { ContentStore } from '../store/store.js';
import type { Router } from './router.js';

export interface AdvertiserInit {
  /** Wait after a change before syncing, so one pull's burst of changes costs one sync; default 500 ms. */
  debounceMs?: number;
  /** Full resync interval, a safety net for missed events; default 5 min. */
  resyncMs?: number;
  /** Keys announced at once; default 4 (a provide costs ~20 ms of CPU, so this spreads the work). */
  concurrency?: number;
  /** Retry delay while the routing table is empty (providing then would hang); default 1000 ms. */
  notReadyRetryMs?: number;
  /**
   * Longest the first sync holds back `announced()`; default 10 s. A node turns ready once peers can find
   * what it holds, but one with thousands of keys must not stay unready for minutes: its records from
   * before a restart stay in the DHT meanwhile.
   */
  readyWaitMs?: number;
}

export interface SyncResult {
  advertised: number;
  withdrawn: number;
  total: number;
  ms: number;
}

/**
 * Keeps the DHT in step with what the local store holds: announces new keys, withdraws gone ones. Syncs on
 * start, on store changes (debounced) and periodically; never two syncs at once.
 */
export class Advertiser {
  readonly #store: ContentStore;
  readonly #router: Router;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #resyncMs: number;
  readonly #concurrency: number;
  readonly #notReadyRetryMs: number;
  readonly #readyWaitMs: number;
  /** When the first sync began announcing (the router was ready). */
  #firstSyncAt: number | undefined;
  readonly #advertised = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #periodic: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #dirty = false;
  #stopped = true;
  /** The last completed sync; for tests, metrics and the debug page. */
  lastSync: SyncResult | undefined;
  readonly #keys: CounterLike<'op' | 'result'>;
  readonly #duration: LabeledHistogramLike<'op'>;

  constructor(
    deps: {
      store: ContentStore;
      router: Router;
      log: Logger;
      /** Keys announced and withdrawn (by operation and result), and the time each took. */
      metrics?: { keys: CounterLike<'op' | 'result'>; duration: LabeledHistogramLike<'op'> };
    },
    init: AdvertiserInit = {},
  ) {
    this.#store = deps.store;
    this.#router = deps.router;
    this.#log = deps.log;
    this.#keys = deps.metrics?.keys ?? NO_COUNTER;
    this.#duration = deps.metrics?.duration ?? NO_COUNTER;
    this.#debounceMs = init.debounceMs ?? 500;
    this.#resyncMs = init.resyncMs ?? 300_000;
    this.#concurrency = init.concurrency ?? 4;
    this.#notReadyRetryMs = init.notReadyRetryMs ?? 1000;
    this.#readyWaitMs = init.readyWaitMs ?? 10_000;
  }

  /** True once what the store held at start is announced, or the first sync has run for `readyWaitMs`. */
  announced(): boolean {
    if (this.lastSync !== undefined) return true;
    return this.#firstSyncAt !== undefined && Date.now() - this.#firstSyncAt >= this.#readyWaitMs;
  }

  /** Keys announced now, by type: content digests and tags. */
  advertisedByType(): { digest: number; tag: number } {
    let digest = 0;
    for (const key of this.#advertised) if (key.startsWith('sha256:')) digest++;
    return { digest, tag: this.#advertised.size - digest };
  }

  start(): void {
    this.#stopped = false;
    this.#unsubscribe = this.#store.onChange(() => this.schedule());
    this.#periodic = setInterval(() => this.schedule(0), this.#resyncMs);
    this.#periodic.unref();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#periodic);
    this.#unsubscribe?.();
    await this.#running;
  }

  /** Requests a sync after `delayMs` (debounced: a pending request is moved, not duplicated). */
  schedule(delayMs = this.#debounceMs): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#kick(), delayMs);
    this.#timer.unref();
  }

  /** Resolves once everything the store holds now has been announced (for tests and start-up). */
  async settled(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const keys = await this.#store.listKeys();
      if (this.#running === undefined && [...keys].every((key) => this.#advertised.has(key))) return;
      if (Date.now() > deadline) throw new Error(`advertising did not settle within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Runs one DHT operation on `keys` keys, counting them and the time per key. */
  async #counted(op: 'advertise' | 'withdraw', keys: number, work: () => Promise<void>): Promise<void> {
    const started = performance.now();
    try {
      await work();
      this.#keys.inc({ op, result: 'ok' }, keys);
    } catch (err) {
      this.#keys.inc({ op, result: 'error' }, keys);
      throw err;
    } finally {
      const seconds = (performance.now() - started) / 1000 / keys;
      for (let i = 0; i < keys; i++) this.#duration.observe({ op }, seconds);
    }
  }

  async #kick(): Promise<void> {
    if (this.#running !== undefined) {
      this.#dirty = true;
      return;
    }
    this.#running = this.#sync()
      .catch((err: unknown) => {
        this.#log.warn({ err }, 'advertising failed; retrying');
        this.schedule(this.#notReadyRetryMs);
      })
      .finally(() => {
        this.#running = undefined;
        if (this.#dirty) {
          this.#dirty = false;
          this.schedule(0);
        }
      });
    await this.#running;
  }

  async #sync(): Promise<void> {
    if (!this.#router.ready()) {
      this.schedule(this.#notReadyRetryMs);
      return;
    }
    this.#firstSyncAt ??= Date.now();
    const started = performance.now();
    const keys = await this.#store.listKeys();
    const added = [...keys].filter((key) => !this.#advertised.has(key));
    const removed = [...this.#advertised].filter((key) => !keys.has(key));
    if (removed.length > 0) {
      await this.#counted('withdraw', removed.length, () => this.#router.withdraw(removed));
      for (const key of removed) this.#advertised.delete(key);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!this.#stopped && next < added.length) {
        const key = added[next++] as string;
        await this.#counted('advertise', 1, () => this.#router.advertise([key]));
        this.#advertised.add(key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, added.length) }, worker));
    this.lastSync = {
      advertised: added.length,
      withdrawn: removed.length,
      total: keys.size,
      ms: performance.now() - started,
    };
    if (added.length + removed.length > 0) this.#log.info({ ...this.lastSync }, 'advertised local content');
  }
}
