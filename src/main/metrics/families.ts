import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { registerComputed, type Sample } from './tally.js';

/** Incremented by the parts that see an event; the only metrics surface parts depend on. */
export interface CounterLike<L extends string> {
  inc(labels: Partial<Record<L, string>>, value?: number): void;
}

/** Records observations (seconds, bytes) into a histogram. */
export interface HistogramLike {
  observe(value: number): void;
}

/** A histogram with labels. */
export interface LabeledHistogramLike<L extends string> {
  observe(labels: Partial<Record<L, string>>, value: number): void;
}

/** Does nothing: what a part counts into when it was built without metrics. */
export const NO_COUNTER: CounterLike<never> & LabeledHistogramLike<never> & HistogramLike = {
  inc: () => undefined,
  observe: () => undefined,
};

/** Seconds buckets from a millisecond to a minute: request and lookup durations. */
export const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Declares metric families on one registry. Every family shoal exports is declared through here, so the
 * naming rules hold in one place: counters end in `_total`, histograms in `_seconds` or `_bytes`.
 */
export class Families {
  readonly #registry: Registry;

  constructor(registry: Registry) {
    this.#registry = registry;
  }

  counter<L extends string>(name: `${string}_total`, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.#registry] });
  }

  histogram<L extends string>(
    name: `${string}_seconds` | `${string}_bytes`,
    help: string,
    labelNames: L[],
    buckets: number[] = SECONDS_BUCKETS,
  ): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.#registry] });
  }

  /** A gauge read from `value()` at every scrape. */
  watch(name: string, help: string, value: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.#registry],
      collect() {
        this.set(value());
      },
    });
  }

  /** A gauge with one label, read from `values()` at every scrape; labels it no longer names read 0. */
  watchEach<L extends string>(
    name: string,
    help: string,
    label: L,
    values: () => Record<string, number>,
  ): void {
    const seen = new Set<string>();
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.#registry],
      collect() {
        const now = values();
        for (const key of seen) if (!(key in now)) this.set({ [label]: key } as Record<L, string>, 0);
        for (const [key, value] of Object.entries(now)) {
          seen.add(key);
          this.set({ [label]: key } as Record<L, string>, value);
        }
      },
    });
  }

  /** A family whose samples are computed at each scrape from tallies a part keeps itself. */
  computed(
    name: string,
    help: string,
    type: 'counter' | 'gauge' | 'histogram',
    samples: () => Sample[],
  ): void {
    registerComputed(this.#registry, { name, help, type }, samples);
  }

  /** A gauge that parts set themselves. */
  gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.#registry] });
  }

  /** Makes each series of `counter` whose `label` is one of `values` exist at 0. */
  zero<L extends string>(
    counter: CounterLike<L>,
    label: L,
    values: readonly string[],
    fixed: Partial<Record<L, string>> = {},
  ): void {
    for (const value of values) counter.inc({ ...fixed, [label]: value } as Partial<Record<L, string>>, 0);
  }
}
