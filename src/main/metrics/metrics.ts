import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SideRoute } from '../registry/side-server.js';

/** Incremented by the parts that see an event; the only metrics surface parts depend on. */
export interface CounterLike<L extends string> {
  inc(labels: Partial<Record<L, string>>, value?: number): void;
}

/** Records observations (seconds, bytes) into a histogram. */
export interface HistogramLike {
  observe(value: number): void;
}

/**
 * Every metric shoal exports, in one Prometheus registry per process (so tests can build their own).
 * Names end in `_total` / `_bytes`; labels are low cardinality (never a digest or a peer id).
 */
export class Metrics {
  readonly #registry = new Registry();
  /** Digest checks by what was checked (`stream`: peer or upstream bytes, `file`, `bytes`) and verdict. */
  readonly verifications: CounterLike<'kind' | 'result'>;
  /** Bytes hashed by the digest workers. */
  readonly verifiedBytes: CounterLike<'kind'>;
  /** Content a peer sent that did not hash to the digest asked for. */
  readonly peerCorrupt: CounterLike<'kind'>;
  /** Peers set aside, by why: `failed` (no answer, broke off) or `corrupt` (sent bad bytes). */
  readonly peerQuarantines: CounterLike<'reason'>;
  /** Bodies continued on another peer after one broke off mid-body. */
  readonly peerResumes: CounterLike<never>;
  /** Local content found corrupt (by a scrub or a re-check after a peer's report) and withdrawn. */
  readonly localCorrupt: CounterLike<'trigger'>;
  /** Peers' reports that this node served bad bytes, by what the re-check was. */
  readonly corruptReports: CounterLike<'result'>;
  /** DHT lookups this node started (a request's cold lookup or a background refresh), by whether they found a provider. */
  readonly routerLookups: CounterLike<'result'>;
  /** How long a blob response waited for a stream buffer from the pool, in seconds. */
  readonly bufferWait: HistogramLike;
  /** Blob responses cut because their client took no byte for --idle-timeout. */
  readonly streamsStalled: CounterLike<never>;

  constructor(init: { defaultMetrics?: boolean } = {}) {
    const counter = <L extends string>(name: string, help: string, labelNames: L[]): Counter<L> =>
      new Counter({ name, help, labelNames, registers: [this.#registry] });
    this.verifications = counter('shoal_verify_total', 'Digest checks by kind and result.', [
      'kind',
      'result',
    ]);
    this.verifiedBytes = counter('shoal_verify_bytes_total', 'Bytes hashed by the digest workers.', ['kind']);
    this.peerCorrupt = counter(
      'shoal_peer_corrupt_total',
      'Content from a peer that did not hash to the digest asked for.',
      ['kind'],
    );
    this.peerQuarantines = counter('shoal_peer_quarantines_total', 'Peers set aside, by reason.', ['reason']);
    this.peerResumes = counter('shoal_peer_resumes_total', 'Bodies resumed on another peer mid-body.', []);
    this.localCorrupt = counter('shoal_local_corrupt_total', 'Local content found corrupt and withdrawn.', [
      'trigger',
    ]);
    this.corruptReports = counter(
      'shoal_corrupt_reports_total',
      'Reports from peers that this node served bad bytes, by re-check result.',
      ['result'],
    );
    this.routerLookups = counter(
      'shoal_router_lookups_total',
      'DHT lookups started, cold or as a background refresh, by whether one found a provider.',
      ['result'],
    );
    this.bufferWait = new Histogram({
      name: 'shoal_stream_buffer_wait_seconds',
      help: 'How long a blob response waited for a stream buffer from the pool.',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.#registry],
    });
    this.streamsStalled = counter(
      'shoal_stream_stalled_total',
      'Blob responses cut because the client took no byte for --idle-timeout.',
      [],
    );
    if (init.defaultMetrics === true) collectDefaultMetrics({ register: this.#registry });
  }

  /** Reports the wait for a lookup's first provider (seconds) as `shoal_mirror_resolve_timeout_seconds`. */
  watchResolveTimeout(seconds: () => number): void {
    this.#watch(
      'shoal_mirror_resolve_timeout_seconds',
      'How long a request now waits for a first peer that holds what it wants (set from observed lookups).',
      seconds,
    );
  }

  /** Reports `count()` as `shoal_router_members` at every scrape: the other live nodes this one knows. */
  watchMembers(count: () => number): void {
    this.#watch(
      'shoal_router_members',
      'Other live nodes this node knows (the members owners are elected among).',
      count,
    );
  }

  /** Reports slow readers served outside the stream pool: how many now, and the bytes they hold. */
  watchParked(streams: () => number, bytes: () => number): void {
    this.#watch('shoal_stream_parked', 'Blob responses to slow readers, served outside the pool.', streams);
    this.#watch('shoal_stream_parked_bytes', 'Bytes slow readers hold outside the pool.', bytes);
  }

  /** A gauge read from `value()` at every scrape. */
  #watch(name: string, help: string, value: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.#registry],
      collect() {
        this.set(value());
      },
    });
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  /** `GET /metrics`, served on `--metrics-addr`. */
  route(): SideRoute {
    return {
      method: 'get',
      path: '/metrics',
      handle: async () => ({ status: 200, contentType: this.contentType, body: await this.render() }),
    };
  }

  render(): Promise<string> {
    return this.#registry.metrics();
  }
}
