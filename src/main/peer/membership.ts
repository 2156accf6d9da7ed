import type { CounterLike } from '../metrics/metrics.js';
import type { Provider, Router } from '../routing/router.js';
import { setBounded } from '../util/bounded-map.js';

/**
 * Why a peer was set aside: `failed` (refused, or broke off mid-body), `silent` (sent no headers in time,
 * or stalled or trickled mid-body), `corrupt` (sent bytes that failed their digest), `owner` (broke off as
 * the node elected to fetch a digest from upstream).
 */
export type AsideReason = 'failed' | 'silent' | 'corrupt' | 'owner';

/** One member as the debug page shows it. */
export interface MemberView {
  id: string;
  /** Asked for content now (not set aside as a source). */
  usable: boolean;
  /** Why and until when (ms since the epoch) it is set aside, as a source or as an owner. */
  aside: Array<{ reason: AsideReason; until: number }>;
  /** Smoothed time to headers of this node's requests to it, in ms; undefined before any. */
  latencyMs: number | undefined;
  /** When a request to it last succeeded (ms since the epoch). */
  lastSeen: number | undefined;
}

/** Peers whose latency is remembered, at most (the least recently heard from goes first). */
const MAX_OBSERVED = 4096;

export interface MembershipInit {
  /** How long a peer that failed a request is not asked; default 10 s. */
  failedMs?: number;
  /** How long a peer that sent corrupt content is not asked; default 5 min (`--peer-corrupt-quarantine`). */
  corruptMs?: number;
  /** How long an owner that failed is left out of the election (this node fetches itself); default 30 s. */
  ownerMs?: number;
}

/**
 * The node's one view of its peers' health. Who is up comes from the router's liveness; on top of that, this
 * keeps who is set aside, why, and until when. Every part that picks a peer asks here: the peer race for
 * sources, pull-through for the electorate that chooses each digest's owner.
 *
 * Sources and the electorate are judged apart on purpose. A peer that failed a fetch under load stays in
 * the election: if it dropped out on some nodes only, they would elect different owners for a digest and
 * fetch it from upstream twice. Only an owner that broke off leaves the electorate. A shorter setting aside
 * never cuts a longer one short. Each one is counted in `shoal_peer_quarantines_total` by reason.
 */
export class Membership {
  readonly #router: Pick<Router, 'selfId' | 'members'>;
  readonly #counter: CounterLike<'reason'> | undefined;
  readonly #ms: Record<AsideReason, number>;
  /** Peers not asked for content, until a time, and why. */
  readonly #sources = new Map<string, Aside>();
  /** Members left out of the owner election, until a time. */
  readonly #electorate = new Map<string, Aside>();
  /** Smoothed request latency of each peer heard from, and when. */
  readonly #latency = new Map<string, { ms: number; at: number }>();

  constructor(
    deps: { router: Pick<Router, 'selfId' | 'members'>; setAside?: CounterLike<'reason'> | undefined },
    init: MembershipInit = {},
  ) {
    this.#router = deps.router;
    this.#counter = deps.setAside;
    this.#ms = {
      failed: init.failedMs ?? 10_000,
      silent: init.failedMs ?? 10_000,
      corrupt: init.corruptMs ?? 300_000,
      owner: init.ownerMs ?? 30_000,
    };
  }

  setAside(peer: string, reason: AsideReason): void {
    const ledger = reason === 'owner' ? this.#electorate : this.#sources;
    const until = Date.now() + this.#ms[reason];
    if ((ledger.get(peer)?.until ?? 0) >= until) return;
    ledger.set(peer, { until, reason });
    this.#counter?.inc({ reason });
  }

  /** A request to `peer` got its headers after `ms`. */
  observe(peer: string, ms: number): void {
    const known = this.#latency.get(peer);
    // An average over roughly the last eight requests: steady, yet a peer that slows down shows it soon.
    const smoothed = known === undefined ? ms : known.ms + (ms - known.ms) / 8;
    setBounded(this.#latency, peer, { ms: smoothed, at: Date.now() }, MAX_OBSERVED);
  }

  /** Every live member with its health, and peers set aside that are no longer members. */
  view(now = Date.now()): MemberView[] {
    const ids = new Set(this.#router.members());
    for (const ledger of [this.#sources, this.#electorate])
      for (const [id, { until }] of ledger) if (until > now) ids.add(id);
    return [...ids].sort().map((id) => {
      const aside = [this.#sources.get(id), this.#electorate.get(id)].filter(
        (entry): entry is Aside => entry !== undefined && entry.until > now,
      );
      const latency = this.#latency.get(id);
      return {
        id,
        usable: this.usable(id, now),
        aside: aside.map(({ reason, until }) => ({ reason, until })),
        latencyMs: latency === undefined ? undefined : Math.round(latency.ms * 10) / 10,
        lastSeen: latency?.at,
      };
    });
  }

  /** Peers set aside now, by reason. */
  asideByReason(now = Date.now()): Record<AsideReason, number> {
    const counts: Record<AsideReason, number> = { failed: 0, silent: 0, corrupt: 0, owner: 0 };
    for (const ledger of [this.#sources, this.#electorate])
      for (const { until, reason } of ledger.values()) if (until > now) counts[reason]++;
    return counts;
  }

  /** Whether `peer` may be asked for content now. */
  usable(peer: string, now = Date.now()): boolean {
    return clear(this.#sources, peer, now);
  }

  /**
   * `providers` without those set aside, except as a last resort: peers set aside only because they failed
   * fast (refused, or broke off) come after every usable one. A holder that was killed and restarted is back
   * within seconds, still set aside, and while the other holder is down it is the only one that can answer:
   * leaving it out made a miss, and containerd failed the pull (issue 26). A silent peer (partitioned, hung)
   * is not: asking it again costs the whole peer timeout each time. `exclude` is never offered.
   */
  async *live(providers: AsyncIterable<Provider>, exclude?: string): AsyncIterable<Provider> {
    const held: Provider[] = [];
    for await (const provider of providers) {
      // The peer a body is being resumed from never is: one that keeps sending part of a body and closing
      // would be resumed from forever.
      if (provider.id === exclude) continue;
      if (this.usable(provider.id)) yield provider;
      else if (this.#sources.get(provider.id)?.reason === 'failed') held.push(provider);
    }
    yield* held;
  }

  /** This node and the live members that may own a digest now: what every owner election runs over. */
  electorate(now = Date.now()): string[] {
    return [this.#router.selfId, ...this.#router.members()].filter((id) => clear(this.#electorate, id, now));
  }

  /** Live members, as the router's liveness sees them. */
  get size(): number {
    return this.#router.members().length;
  }
}

interface Aside {
  until: number;
  reason: AsideReason;
}

/** Whether `peer` is not set aside in `ledger` at `now`; an expired entry is dropped. */
function clear(ledger: Map<string, Aside>, peer: string, now: number): boolean {
  const until = ledger.get(peer)?.until;
  if (until === undefined) return true;
  if (until > now) return false;
  ledger.delete(peer);
  return true;
}
