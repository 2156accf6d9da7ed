import { collectDefaultMetrics, Registry } from 'prom-client';
import type { SideRoute } from '../registry/side-server.js';
import { type CounterLike, Families, type HistogramLike, type LabeledHistogramLike } from './families.js';
import { RequestMetrics } from './requests.js';

export type { CounterLike, HistogramLike, LabeledHistogramLike } from './families.js';

/**
 * Every metric shoal exports, in one Prometheus registry per process (so tests can build their own).
 * Counters end in `_total`, histograms in `_seconds` or `_bytes`; gauges that count things (members,
 * requests in flight) carry no unit. Labels are low cardinality: never a digest, a repository or a peer id.
 * Parts see only the narrow `CounterLike`/`HistogramLike` shapes, and `watch…` gauges read a part's state at
 * each scrape.
 */
export class Metrics {
  readonly #registry = new Registry();
  readonly #families = new Families(this.#registry);
  #requests: RequestMetrics | undefined;

  // Verification.
  /** Digest checks by what was checked (`stream`: peer or upstream bytes, `file`, `bytes`) and verdict. */
  readonly verifications: CounterLike<'kind' | 'result'>;
  /** Bytes hashed by the digest workers. */
  readonly verifiedBytes: CounterLike<'kind'>;
  /** Local content found corrupt (by a scrub or a re-check after a peer's report) and withdrawn. */
  readonly localCorrupt: CounterLike<'trigger'>;
  /** Peers' reports that this node served bad bytes, by what the re-check was. */
  readonly corruptReports: CounterLike<'result'>;

  // Peers.
  /** Content a peer sent that did not hash to the digest asked for. */
  readonly peerCorrupt: CounterLike<'kind'>;
  /** Peers set aside, by why: `failed` (refused, broke off), `silent`, `corrupt` (sent bad bytes), `owner`. */
  readonly peerQuarantines: CounterLike<'reason'>;
  /** Bodies continued on another peer after one broke off mid-body. */
  readonly peerResumes: CounterLike<never>;
  /** Time from a request to a peer to its headers, by method (HEAD describes, GET fetches). */
  readonly peerRequestDuration: LabeledHistogramLike<'method'>;
  /** Requests to peers that failed or misbehaved, by cause. */
  readonly peerFailures: CounterLike<'cause'>;

  // Routing.
  /** DHT lookups this node started (a request's cold lookup or a background refresh), by whether they found a provider. */
  readonly routerLookups: CounterLike<'result'>;
  /** Time of a DHT lookup to its first provider, or to its end when it found none. */
  readonly resolveDuration: LabeledHistogramLike<'result'>;
  /** Keys announced or withdrawn in the DHT, by operation and result. */
  readonly advertiseKeys: CounterLike<'op' | 'result'>;
  /** Time one key's announcement or withdrawal took. */
  readonly advertiseDuration: LabeledHistogramLike<'op'>;

  // Pull-through.
  /** Requests to upstream registries, by registry and final status (`error`: no answer). */
  readonly upstreamRequests: CounterLike<'registry' | 'status'>;
  /** Body bytes received from upstream registries (and their CDNs). */
  readonly upstreamBytes: CounterLike<'registry'>;
  /** Pull-through downloads started, by where from (`upstream`, or the elected `owner`). */
  readonly pullThroughDownloads: CounterLike<'from'>;
  /** Requests served from a download another request had started. */
  readonly pullThroughCoalesced: CounterLike<never>;
  /** This node asked the elected owner of a digest for it, by result (`ok`, `absent`, `failed`). */
  readonly ownerFetches: CounterLike<'result'>;
  /** Content the pull-through cache evicted to stay under --cache-max-bytes, and its bytes. */
  readonly cacheEvictions: CounterLike<never>;
  readonly cacheEvictedBytes: CounterLike<never>;
  /** Pull-through downloads refused or cut for want of room: over the bound, disk nearly full, write failed. */
  readonly cacheFull: CounterLike<'reason'>;

  // Streaming.
  /** How long a blob response waited for a stream buffer from the pool, in seconds. */
  readonly bufferWait: HistogramLike;
  /** Blob responses cut because their client took no byte for --idle-timeout. */
  readonly streamsStalled: CounterLike<never>;

  constructor(init: { defaultMetrics?: boolean } = {}) {
    const f = this.#families;
    this.verifications = f.counter('shoal_verify_total', 'Digest checks by kind and result.', [
      'kind',
      'result',
    ]);
    this.verifiedBytes = f.counter('shoal_verify_bytes_total', 'Bytes hashed by the digest workers.', [
      'kind',
    ]);
    this.localCorrupt = f.counter('shoal_local_corrupt_total', 'Local content found corrupt and withdrawn.', [
      'trigger',
    ]);
    this.corruptReports = f.counter(
      'shoal_corrupt_reports_total',
      'Reports from peers that this node served bad bytes, by re-check result.',
      ['result'],
    );
    this.peerCorrupt = f.counter(
      'shoal_peer_corrupt_total',
      'Content from a peer that did not hash to the digest asked for.',
      ['kind'],
    );
    this.peerQuarantines = f.counter('shoal_peer_quarantines_total', 'Peers set aside, by reason.', [
      'reason',
    ]);
    this.peerResumes = f.counter('shoal_peer_resumes_total', 'Bodies resumed on another peer mid-body.', []);
    this.peerRequestDuration = f.histogram(
      'shoal_peer_request_duration_seconds',
      'Time from a request to a peer to its headers, by method.',
      ['method'],
    );
    this.peerFailures = f.counter(
      'shoal_peer_failures_total',
      'Requests to peers that failed or misbehaved, by cause (timeout, refused, broken, digest_mismatch, wrong_digest, overlong, unauthorised, absent, error).',
      ['cause'],
    );
    this.routerLookups = f.counter(
      'shoal_router_lookups_total',
      'DHT lookups started, cold or as a background refresh, by whether one found a provider.',
      ['result'],
    );
    this.resolveDuration = f.histogram(
      'shoal_resolve_duration_seconds',
      'Time of a DHT lookup to its first provider (found), or to its end (none).',
      ['result'],
    );
    this.advertiseKeys = f.counter(
      'shoal_advertise_keys_total',
      'Keys announced or withdrawn in the DHT, by operation (advertise, withdraw) and result (ok, error).',
      ['op', 'result'],
    );
    this.advertiseDuration = f.histogram(
      'shoal_advertise_duration_seconds',
      'Time one key took to announce or withdraw in the DHT.',
      ['op'],
    );
    this.upstreamRequests = f.counter(
      'shoal_upstream_requests_total',
      'Requests to upstream registries, by registry and final status (error: no answer).',
      ['registry', 'status'],
    );
    this.upstreamBytes = f.counter(
      'shoal_upstream_bytes_total',
      'Body bytes received from upstream registries for pull-through.',
      ['registry'],
    );
    this.pullThroughDownloads = f.counter(
      'shoal_pullthrough_downloads_total',
      'Pull-through downloads started, by where from (upstream, owner).',
      ['from'],
    );
    this.pullThroughCoalesced = f.counter(
      'shoal_pullthrough_coalesced_total',
      'Requests served from a pull-through download another request had started.',
      [],
    );
    this.ownerFetches = f.counter(
      'shoal_pullthrough_owner_fetches_total',
      'Digests this node asked their elected owner for, by result (ok, absent, failed).',
      ['result'],
    );
    this.cacheEvictions = f.counter(
      'shoal_cache_evictions_total',
      'Content evicted from the embedded store to stay under --cache-max-bytes.',
      [],
    );
    this.cacheEvictedBytes = f.counter(
      'shoal_cache_evicted_bytes_total',
      'Bytes evicted from the embedded store to stay under --cache-max-bytes.',
      [],
    );
    this.cacheFull = f.counter(
      'shoal_cache_full_total',
      'Pull-through downloads refused (bound, disk) or cut (write) for want of room in the cache.',
      ['reason'],
    );
    this.bufferWait = f.histogram(
      'shoal_stream_buffer_wait_seconds',
      'How long a blob response waited for a stream buffer from the pool.',
      [],
      [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5],
    );
    this.streamsStalled = f.counter(
      'shoal_stream_stalled_total',
      'Blob responses cut because the client took no byte for --idle-timeout.',
      [],
    );
    // Series whose labels are a small known set start at 0, so a dashboard shows 0 rather than no data.
    f.zero(this.peerFailures, 'cause', [
      'timeout',
      'refused',
      'broken',
      'digest_mismatch',
      'wrong_digest',
      'overlong',
      'unauthorised',
      'absent',
      'error',
    ]);
    f.zero(this.peerQuarantines, 'reason', ['failed', 'silent', 'corrupt', 'owner']);
    f.zero(this.peerCorrupt, 'kind', ['manifest', 'blob']);
    f.zero(this.routerLookups, 'result', ['found', 'none']);
    f.zero(this.ownerFetches, 'result', ['ok', 'absent', 'failed']);
    f.zero(this.pullThroughDownloads, 'from', ['upstream', 'owner']);
    f.zero(this.cacheFull, 'reason', ['bound', 'disk', 'write']);
    for (const op of ['advertise', 'withdraw']) f.zero(this.advertiseKeys, 'result', ['ok', 'error'], { op });
    if (init.defaultMetrics === true) collectDefaultMetrics({ register: this.#registry });
  }

  /** The request families (made once); `inFlight` counts the requests being answered at each scrape. */
  requests(inFlight: () => number): RequestMetrics {
    this.#requests ??= new RequestMetrics(this.#families, inFlight);
    return this.#requests;
  }

  /** Reports the wait for a lookup's first provider (seconds) as `shoal_mirror_resolve_timeout_seconds`. */
  watchResolveTimeout(seconds: () => number): void {
    this.#families.watch(
      'shoal_mirror_resolve_timeout_seconds',
      'How long a request now waits for a first peer that holds what it wants (set from observed lookups).',
      seconds,
    );
  }

  /** Reports `count()` as `shoal_router_members` at every scrape: the other live nodes this one knows. */
  watchMembers(count: () => number): void {
    this.#families.watch(
      'shoal_router_members',
      'Other live nodes this node knows (the members owners are elected among).',
      count,
    );
  }

  /** The router's routing table size, and the keys this node announces by type (digest, tag). */
  watchRouting(tableSize: () => number, advertised: () => Record<string, number>): void {
    this.#families.watch('shoal_router_table_size', 'Nodes in the DHT routing table.', tableSize);
    this.#families.watchEach(
      'shoal_advertised_keys',
      'Keys this node announces in the DHT, by type (digest, tag).',
      'type',
      advertised,
    );
  }

  /** Peers set aside now, by reason. */
  watchSetAside(byReason: () => Record<string, number>): void {
    this.#families.watchEach('shoal_peers_set_aside', 'Peers set aside now, by reason.', 'reason', byReason);
  }

  /** Reports slow readers served outside the stream pool: how many now, and the bytes they hold. */
  watchParked(streams: () => number, bytes: () => number): void {
    this.#families.watch(
      'shoal_stream_parked',
      'Blob responses to slow readers, served outside the pool.',
      streams,
    );
    this.#families.watch('shoal_stream_parked_bytes', 'Bytes slow readers hold outside the pool.', bytes);
  }

  /** Bytes the pull-through cache (the embedded store) holds. */
  watchCache(bytes: () => number): void {
    this.#families.watch(
      'shoal_cache_bytes',
      'Bytes held by the embedded store that pull-through fills.',
      bytes,
    );
  }

  /** Digest checks handed to the workers and not yet finished. */
  watchVerifyQueue(depth: () => number): void {
    this.#families.watch(
      'shoal_verify_queue_depth',
      'Digest checks handed to the worker threads and not yet finished (waiting for a worker, or being hashed).',
      depth,
    );
  }

  /** Each preflight check: 1 when it passed at its last run, 0 when not. */
  watchPreflight(results: () => Record<string, number>): void {
    this.#families.watchEach(
      'shoal_preflight_ok',
      'Whether each preflight check passed at its last run (1) or not (0).',
      'check',
      results,
    );
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** `GET /metrics`, served on `--metrics-addr`. */
  route(): SideRoute {
    return {
      method: 'get',
      path: '/metrics',
      handle: async () => ({ status: 200, contentType: this.contentType, body: await this.render() }),
    };
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.#registry.metrics();
  }
}
