import { setTimeout as sleep } from 'node:timers/promises';
import { setBounded } from '../util/bounded-map.js';

/**
 * A token bucket of bytes per second shared by every stream it is handed to. `take` waits until the bytes
 * fit; the bucket holds at most one second of tokens, so an idle period buys no long burst.
 */
export class ByteRateLimiter {
  readonly #rate: number;
  #tokens: number;
  #last = performance.now();

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
    this.#tokens = bytesPerSecond;
  }

  async take(bytes: number): Promise<void> {
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    this.#tokens -= bytes;
    // Debt is allowed and paid by waiting, so concurrent streams share the rate fairly in arrival order.
    if (this.#tokens < 0) await sleep((-this.#tokens / this.#rate) * 1000);
  }
}

/** Members whose upload bucket is kept, at most (the least recent is forgotten first). */
const MAX_LIMITED_MEMBERS = 4096;

/** One upload bucket per member that pulled lately, each at `bytesPerSecond` (`--peer-upload-rate`). */
export class MemberRateLimits {
  readonly #rate: number;
  readonly #limiters = new Map<string, ByteRateLimiter>();

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
  }

  /** The bucket of `member`; undefined when uploads are unlimited (a rate of 0). */
  of(member: string): ByteRateLimiter | undefined {
    if (this.#rate <= 0) return undefined;
    const limiter = this.#limiters.get(member) ?? new ByteRateLimiter(this.#rate);
    setBounded(this.#limiters, member, limiter, MAX_LIMITED_MEMBERS);
    return limiter;
  }
}
