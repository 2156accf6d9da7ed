import { setTimeout as sleep } from 'node:timers/promises';

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
