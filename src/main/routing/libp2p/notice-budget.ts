import { setBounded } from '../../util/bounded-map.js';
import { TokenBucket } from '../../util/token-bucket.js';

/**
 * What a notice is, for its allowance: the operator's own invalidation (sent once, by the node the operator
 * asked, to every member), or anything else a member sends (relays, corrupt reports).
 */
export type NoticeClass = 'operator' | 'member';

/** Each class's allowance per sender: notices a second, and the burst it may save up. */
export const NOTICE_ALLOWANCE: Record<NoticeClass, { perSecond: number; burst: number }> = {
  // A member's relays and reports: the tag book behind them writes to disk.
  member: { perSecond: 20, burst: 200 },
  // An operator invalidates a few tags, or a script a few hundred; never a flood's worth.
  operator: { perSecond: 5, burst: 100 },
};

/**
 * How long a peer is a newcomer, counted from when this node first heard from it. Newcomers share one
 * allowance per class, so fresh identities cannot multiply it; after this, a member has its own.
 */
export const NEWCOMER_MS = 5 * 60_000;

/** Where newcomers' notices are counted, together. */
const NEWCOMERS = '';

/**
 * The notice allowances a node gives its senders: per class, so a flood of relays never uses up what the
 * operator's invalidations need; per member once it has been known for NEWCOMER_MS, and one shared
 * allowance for every newcomer before that (a node that has just started sees every member as new).
 */
export class NoticeBudget {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #firstHeard = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** True if a notice of `kind` from `peer` is within its allowance (and counts it). */
  take(peer: string, kind: NoticeClass): boolean {
    const now = this.#now();
    let first = this.#firstHeard.get(peer);
    if (first === undefined) {
      first = now;
      setBounded(this.#firstHeard, peer, now, 10_000);
    }
    const key = `${kind}/${now - first < NEWCOMER_MS ? NEWCOMERS : peer}`;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      const { perSecond, burst } = NOTICE_ALLOWANCE[kind];
      bucket = new TokenBucket(perSecond, burst, now);
      setBounded(this.#buckets, key, bucket, 10_000);
    }
    return bucket.take(now);
  }
}
