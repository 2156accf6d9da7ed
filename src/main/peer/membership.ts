import type { CounterLike } from '../metrics/metrics.js';
import type { Provider, Router } from '../routing/router.js';

/**
 * Why a peer was set aside: `failed` (no answer, or broke off mid-body), `corrupt` (sent bytes that failed
 * their digest), `owner` (broke off as the node elected to fetch a digest from upstream).
 */
export type AsideReason = 'failed' | 'corrupt' | 'owner';

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
  /** Peers not asked for content, until a time. */
  readonly #sources = new Map<string, number>();
  /** Members left out of the owner election, until a time. */
  readonly #electorate = new Map<string, number>();

  constructor(
    deps: { router: Pick<Router, 'selfId' | 'members'>; setAside?: CounterLike<'reason'> | undefined },
    init: MembershipInit = {},
  ) {
    this.#router = deps.router;
    this.#counter = deps.setAside;
    this.#ms = {
      failed: init.failedMs ?? 10_000,
      corrupt: init.corruptMs ?? 300_000,
      owner: init.ownerMs ?? 30_000,
    };
  }

  setAside(peer: string, reason: AsideReason): void {
    const ledger = reason === 'owner' ? this.#electorate : this.#sources;
    const until = Date.now() + this.#ms[reason];
    if ((ledger.get(peer) ?? 0) >= until) return;
    ledger.set(peer, until);
    this.#counter?.inc({ reason });
  }

  /** Whether `peer` may be asked for content now. */
  usable(peer: string, now = Date.now()): boolean {
    return clear(this.#sources, peer, now);
  }

  /** `providers` without those set aside. */
  async *live(providers: AsyncIterable<Provider>): AsyncIterable<Provider> {
    for await (const provider of providers) if (this.usable(provider.id)) yield provider;
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

/** Whether `peer` is not set aside in `ledger` at `now`; an expired entry is dropped. */
function clear(ledger: Map<string, number>, peer: string, now: number): boolean {
  const until = ledger.get(peer);
  if (until === undefined) return true;
  if (until > now) return false;
  ledger.delete(peer);
  return true;
}
