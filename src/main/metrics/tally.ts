import type { Registry } from 'prom-client';

/** Observations kept as bucket counts, the way a Prometheus histogram exposes them. */
export class Buckets {
  readonly bounds: readonly number[];
  /** Non-cumulative counts: `counts[i]` holds values ≤ bounds[i] and > bounds[i-1]; the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  /** Adds `other`'s counts (same bounds) into this one. */
  add(other: Buckets): void {
    for (let i = 0; i < this.counts.length; i++)
      this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.sum += other.sum;
    this.count += other.count;
  }
}

type Labels = Record<string, string>;

/** One exposed sample, as prom-client's registry formats it. */
export interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** The `_bucket`, `_sum` and `_count` samples of one labelled histogram. */
export function histogramSamples(name: string, labels: Labels, buckets: Buckets): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  buckets.bounds.forEach((bound, i) => {
    cumulative += buckets.counts[i] as number;
    samples.push({
      metricName: `${name}_bucket`,
      labels: { ...labels, le: String(bound) },
      value: cumulative,
    });
  });
  samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: buckets.count });
  samples.push({ metricName: `${name}_sum`, labels, value: buckets.sum });
  samples.push({ metricName: `${name}_count`, labels, value: buckets.count });
  return samples;
}

/**
 * Registers a family whose samples are computed at scrape time by `samples()`: the hot path only adds to
 * plain numbers, and prom-client formats the result like any of its own metrics.
 */
export function registerComputed(
  registry: Registry,
  family: { name: string; help: string; type: 'counter' | 'gauge' | 'histogram' },
  samples: () => Sample[],
): void {
  const metric = {
    name: family.name,
    help: family.help,
    type: family.type,
    aggregator: 'sum',
    get: async () => ({ ...family, aggregator: 'sum', values: samples() }),
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
