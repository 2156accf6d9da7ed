import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Provider, Router } from '../routing/router.js';
import { type ContentOrigin, noteWhy } from '../store/store.js';
import { type Attempt, hedgedRace } from './hedge.js';
import { LatencyTracker } from './latency.js';
import { LookupCache } from './lookup-cache.js';
import type { Membership } from './membership.js';
import { failureCause, type PeerFailureCause, PeerRequestError } from './peer-client.js';
import { ResolveWait } from './resolve-wait.js';

export interface PeerRaceInit {
  /** Shortest wait for a first provider; default 20 ms (`--mirror-resolve-timeout`). */
  resolveTimeoutMs?: number;
  /** Longest wait for a first provider, also used until enough lookups were seen; default 500 ms. */
  resolveTimeoutMaxMs?: number;
  /** Age after which a key's providers are looked up again in the background; default 5000 ms. */
  lookupRefreshMs?: number;
  /** Most peers tried per request; default 3 (`--mirror-resolve-retries`). */
  maxAttempts?: number;
  /** Hard cap on a race, and on each peer's headers; default 3000 ms. */
  peerTimeoutMs?: number;
}

const HEDGE_MIN_MS = 10;
const HEDGE_MAX_MS = 1000;

/**
 * Asks the peers that hold a key, as the DHT names them: hedged across providers, each failure judged and
 * counted, each answer's latency fed to the hedge delay, to the peer's health in Membership and to
 * `shoal_peer_request_duration_seconds`. The lookups behind it are cached and shared (LookupCache), and the
 * wait for a first provider follows the lookups seen (ResolveWait).
 */
export class PeerRace {
  readonly #lookups: LookupCache;
  readonly #latency = new LatencyTracker();
  readonly #membership: Membership;
  readonly #resolveWait: ResolveWait;
  readonly #metrics: Metrics;
  readonly #log: Logger | undefined;
  readonly #maxAttempts: number;
  readonly #peerTimeoutMs: number;

  constructor(
    deps: { router: Router; membership: Membership; metrics: Metrics; log?: Logger | undefined },
    init: PeerRaceInit = {},
  ) {
    this.#membership = deps.membership;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#resolveWait = new ResolveWait(
      { log: deps.log },
      { floorMs: init.resolveTimeoutMs ?? 20, capMs: init.resolveTimeoutMaxMs ?? 500 },
    );
    const { routerLookups, resolveDuration } = deps.metrics;
    this.#lookups = new LookupCache(
      {
        router: deps.router,
        onLookup: (firstMs, totalMs) => {
          const result = firstMs === undefined ? 'none' : 'found';
          routerLookups.inc({ result });
          resolveDuration.observe({ result }, (firstMs ?? totalMs) / 1000);
          this.#resolveWait.record(firstMs);
        },
      },
      { refreshMs: init.lookupRefreshMs ?? 5000 },
    );
    deps.metrics.watchResolveTimeout(() => this.#resolveWait.ms / 1000);
    this.#maxAttempts = init.maxAttempts ?? 3;
    this.#peerTimeoutMs = init.peerTimeoutMs ?? 3000;
  }

  /** Looks `key` up now, unless its providers are known and fresh: a race for it soon need not wait. */
  warm(key: string): void {
    this.#lookups.warm(key);
  }

  /** Forgets the providers found for `key`: the next race looks it up afresh. */
  forget(key: string): void {
    this.#lookups.forget(key);
  }

  /**
   * Races providers of `key`; failed peers are quarantined, time to headers feeds the hedge delay. When
   * `gone` aborts (the client left), the lookup and every attempt still running are abandoned at once.
   */
  async run<T>(
    key: string,
    method: 'HEAD' | 'GET',
    attempt: (provider: Provider, signal: AbortSignal) => Promise<T>,
    options: {
      /** The client's request: when its signal aborts, the race is abandoned; a lost race notes why in it. */
      client?: ContentOrigin | undefined;
      /** A peer not to ask at all (the one a body broke off from). */
      exclude?: string | undefined;
      /** A lost race: told whether any provider answered at all (an answer that would not do, or an error). */
      lost?: ((answered: boolean) => void) | undefined;
    } = {},
  ): Promise<Attempt<T> | undefined> {
    const { client, exclude } = options;
    const lookup = new AbortController();
    const story = new RaceStory();
    const gone = client?.signal;
    const timed = async (provider: Provider, signal: AbortSignal): Promise<T> => {
      const started = performance.now();
      try {
        const response = await attempt(provider, signal);
        const ms = performance.now() - started;
        this.#latency.record(ms);
        this.#membership.observe(provider.id, ms);
        this.#metrics.peerRequestDuration.observe({ method }, ms / 1000);
        return response;
      } catch (err) {
        if (!signal.aborted) story.failed(provider.id, this.#failed(key, provider, err));
        throw err;
      }
    };
    // A key the cluster is known to hold waits up to the cap for its next lookup: every provider the last
    // one found may have just failed (holders restarting), and a miss makes containerd fail the pull when
    // the registry is down. A key never found keeps the short, learned wait.
    const firstProviderTimeoutMs = this.#lookups.held(key) ? this.#resolveWait.capMs : this.#resolveWait.ms;
    try {
      const won = await hedgedRace(
        story.handed(this.#membership.live(story.found(this.#lookups.lookup(key, lookup.signal)), exclude)),
        timed,
        {
          maxAttempts: this.#maxAttempts,
          hedgeDelayMs: Math.min(HEDGE_MAX_MS, Math.max(HEDGE_MIN_MS, this.#latency.quantile(0.9, 100))),
          firstProviderTimeoutMs,
          signal:
            gone === undefined
              ? AbortSignal.timeout(this.#peerTimeoutMs)
              : AbortSignal.any([AbortSignal.timeout(this.#peerTimeoutMs), gone]),
        },
      );
      if (won === undefined && gone?.aborted !== true) {
        noteWhy(client, `${method} ${story.why(firstProviderTimeoutMs, this.#peerTimeoutMs)}`);
        options.lost?.(story.answered);
      }
      return won;
    } finally {
      lookup.abort();
    }
  }

  /** An attempt that failed by itself (not abandoned): counted, and the peer judged. */
  #failed(key: string, provider: Provider, err: unknown): PeerFailureCause {
    const cause = failureCause(err);
    this.#metrics.peerFailures.inc({ cause });
    this.#log?.debug({ key, peer: provider.id, err }, 'peer attempt failed');
    // A peer that answered 404 is alive and only lacks this key (a record outlived its content, or a tag it
    // no longer serves): set aside, it would be skipped for every other key too. One that answered for other
    // content than asked is set aside as long as one that sent corrupt bytes.
    if (err instanceof PeerRequestError && err.wrongDigest) this.#membership.setAside(provider.id, 'corrupt');
    else if (!(err instanceof PeerRequestError && err.answered))
      this.#membership.setAside(provider.id, cause === 'timeout' ? 'silent' : 'failed');
    // Either way it is not handed out for this key again; the lookup cache refreshes the key.
    this.#lookups.failed(key, provider.id);
    return cause;
  }
}

/**
 * What one race saw, for the log line of a request it could not serve: how many providers the lookup
 * found, how many of them were not set aside, and why each one asked failed.
 */
export class RaceStory {
  #found = 0;
  #handed = 0;
  readonly #failures: string[] = [];
  #answered = false;
  readonly #started = performance.now();
  /** When the lookup ran out of providers by itself (ms into the race); undefined while it had not. */
  #lookupEndedMs: number | undefined;

  async *found(providers: AsyncIterable<Provider>): AsyncIterable<Provider> {
    for await (const provider of providers) {
      this.#found++;
      yield provider;
    }
    this.#lookupEndedMs = performance.now() - this.#started;
  }

  async *handed(providers: AsyncIterable<Provider>): AsyncIterable<Provider> {
    for await (const provider of providers) {
      this.#handed++;
      yield provider;
    }
  }

  failed(peer: string, cause: PeerFailureCause): void {
    this.#failures.push(`${peer} ${cause}`);
    if (cause !== 'timeout') this.#answered = true;
  }

  /** Whether any provider asked sent an answer (or failed at once), rather than nothing in time. */
  get answered(): boolean {
    return this.#answered;
  }

  why(firstProviderMs: number, peerTimeoutMs: number): string {
    if (this.#found === 0) {
      // The wait ran out, or the lookup ended first (the DHT holds no record of the key, as on a fresh node).
      const ended = this.#lookupEndedMs;
      return ended === undefined
        ? `found no provider in ${firstProviderMs} ms`
        : `found no provider: the lookup ended in ${Math.round(ended)} ms`;
    }
    const found = `found ${this.#found} provider${this.#found === 1 ? '' : 's'}`;
    const aside = this.#found - this.#handed;
    const parts = [found];
    if (aside > 0) parts.push(`${aside} passed over (set aside)`);
    if (this.#failures.length > 0) parts.push(`failed: ${this.#failures.join(', ')}`);
    const silent = this.#handed - this.#failures.length;
    if (silent > 0) parts.push(`${silent} asked sent no answer in ${peerTimeoutMs} ms`);
    return parts.join('; ');
  }
}
