/** Recent time-to-first-byte samples of peer fetches, for choosing when to hedge. */
export class LatencyTracker {
  readonly #samples: number[] = [];
  readonly #size: number;
  #next = 0;

  constructor(size = 128) {
    this.#size = size;
  }

  record(ms: number): void {
    if (this.#samples.length < this.#size) this.#samples.push(ms);
    else this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#size;
  }

  /** The q-quantile (0..1) of recent samples, or `fallback` before there are enough to judge. */
  quantile(q: number, fallback: number): number {
    if (this.#samples.length < 8) return fallback;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? fallback;
  }
}
