import type { CounterLike } from '../metrics/metrics.js';
import type { Provider } from '../routing/router.js';

/** Why a peer was set aside. */
export type AsideReason = 'failed' | 'corrupt';

/**
 * Peers this node has set aside, each until a time: one that failed a request, sent bad bytes, or broke
 * off as an owner. The router's liveness says who is up; this says who is not asked for now, whatever the
 * router says. A shorter setting aside never cuts a longer one short.
 */
export class Membership {
  readonly #aside = new Map<string, number>();
  readonly #counter: CounterLike<'reason'> | undefined;

  constructor(deps: { setAside?: CounterLike<'reason'> | undefined } = {}) {
    this.#counter = deps.setAside;
  }

  setAside(peer: string, ms: number, reason: AsideReason): void {
    const until = Date.now() + ms;
    if ((this.#aside.get(peer) ?? 0) >= until) return;
    this.#aside.set(peer, until);
    this.#counter?.inc({ reason });
  }

  /** Whether `peer` may be asked now. */
  usable(peer: string, now = Date.now()): boolean {
    const until = this.#aside.get(peer);
    if (until === undefined) return true;
    if (until > now) return false;
    this.#aside.delete(peer);
    return true;
  }

  /** `providers` without those set aside. */
  async *live(providers: AsyncIterable<Provider>): AsyncIterable<Provider> {
    for await (const provider of providers) if (this.usable(provider.id)) yield provider;
  }
}
