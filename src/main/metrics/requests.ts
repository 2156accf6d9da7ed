import { type Families, SECONDS_BUCKETS } from './families.js';
import { Buckets, histogramSamples, type Sample } from './tally.js';

/** What kind of thing a client asked for (`other`: the API ping, a path that is not the pull API). */
export type RequestKind = 'manifest' | 'blob' | 'tag_list' | 'referrers' | 'other';

/**
 * How a request ended: served (`hit`); not held here or at any source (`miss`); refused by the mirrored
 * registries, `--registry-filters` or `--resolve-tags` (`filtered`); a bad request or a failure (`error`);
 * cut before its body was complete (`cut`).
 */
export type RequestResult = 'hit' | 'miss' | 'filtered' | 'error' | 'cut';

/** Where the answer came from; `none` when nothing was served. */
export type RequestSource = 'local' | 'peer' | 'owner' | 'upstream' | 'none';

/** Who asked: a client of the node (containerd, podman…), or a member proven by its signature. */
export type Requester = 'client' | 'member';

/** One finished request, as it is counted. Every field is a bounded value: no digest, repository or peer. */
export interface CountedRequest {
  /** The registry asked for when it is one of the mirrored set, else `other`. */
  registryLabel: string;
  kind: RequestKind;
  source: RequestSource;
  result: RequestResult;
  requester: Requester;
  /** Body bytes the client received. */
  bytes: number;
  seconds: number;
  firstByteSeconds: number;
  /** The longest the client waited for bytes: for the first, or between two of a streamed body. */
  longestWaitSeconds: number;
}

/** Where finished requests are counted; the ledger's only view of the metrics. */
export interface RequestRecorder {
  record(request: CountedRequest, nowMs: number): void;
}

const SIZE_BUCKETS = [256, 4096, 65_536, 1 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30];

// Each label but the registry takes one of a few values: their positions index a registry's cells.
const KINDS: Record<RequestKind, number> = { manifest: 0, blob: 1, tag_list: 2, referrers: 3, other: 4 };
const SOURCES: Record<RequestSource, number> = { local: 0, peer: 1, owner: 2, upstream: 3, none: 4 };
const RESULTS: Record<RequestResult, number> = {
  hit: 0,
  miss: 1,
  filtered: 2,
  error: 3,
  cut: 4,
};
const REQUESTERS: Record<Requester, number> = { client: 0, member: 1 };
const SLOTS = 5 * 5 * 5 * 2;

/** Everything counted for one combination of labels. */
interface Cell {
  registry: string;
  kind: string;
  source: string;
  result: string;
  requester: string;
  requests: number;
  bytes: number;
  duration: Buckets;
  firstByte: Buckets;
  longestWait: Buckets;
  size: Buckets;
}

/**
 * The request families: Spegel's mirror request, duration, size and in-flight families under shoal names.
 * Counting a request adds to plain numbers in one cell per label combination (a few hundred at most, as
 * every label is drawn from a small set); the families are summed from the cells at each scrape. Through
 * prom-client's own counters each request would cost about 5 µs of label hashing.
 */
export class RequestMetrics implements RequestRecorder {
  readonly #cells: Cell[] = [];
  /** Each registry's cells, by the position of the other labels' values. */
  readonly #index = new Map<string, Array<Cell | undefined>>();
  readonly #lastSuccess = new Map<string, number>();

  constructor(families: Families, inFlight: () => number) {
    const cells = (): Cell[] => this.#cells;
    families.computed(
      'shoal_requests_total',
      'Client requests, counted once where each ends, by registry, kind, source, result and requester.',
      'counter',
      () =>
        cells().map((cell) => ({
          labels: {
            registry: cell.registry,
            kind: cell.kind,
            source: cell.source,
            result: cell.result,
            requester: cell.requester,
          },
          value: cell.requests,
        })),
    );
    families.computed(
      'shoal_served_bytes_total',
      'Body bytes served, by source and requester.',
      'counter',
      () => sumBy(cells(), ['source', 'requester'], (cell) => cell.bytes),
    );
    const histogram = (
      name: string,
      help: string,
      labels: Array<keyof Cell>,
      pick: (cell: Cell) => Buckets,
    ) => families.computed(name, help, 'histogram', () => bucketsBy(name, cells(), labels, pick));
    histogram(
      'shoal_request_duration_seconds',
      'Time from a request to the end of its response, by kind and source.',
      ['kind', 'source'],
      (cell) => cell.duration,
    );
    histogram(
      'shoal_request_first_byte_seconds',
      'Time from a request to the first byte of its response body (or its head, when it has none).',
      ['kind', 'source'],
      (cell) => cell.firstByte,
    );
    histogram(
      'shoal_request_longest_wait_seconds',
      'Longest a response kept its client waiting for bytes (the first, or the next of a streamed body): a stall.',
      ['kind', 'source'],
      (cell) => cell.longestWait,
    );
    histogram(
      'shoal_response_size_bytes',
      'Body bytes of each response, by kind.',
      ['kind'],
      (cell) => cell.size,
    );
    families.computed(
      'shoal_last_success_timestamp_seconds',
      'When a client request was last served, by source (unix seconds).',
      'gauge',
      () => [...this.#lastSuccess].map(([source, value]) => ({ labels: { source }, value })),
    );
    families.watch(
      'shoal_requests_in_flight',
      'Requests being answered now, on every registry listener.',
      inFlight,
    );
  }

  record(request: CountedRequest, nowMs: number): void {
    const cell = this.#cellOf(request);
    cell.requests++;
    cell.bytes += request.bytes;
    cell.duration.observe(request.seconds);
    cell.firstByte.observe(request.firstByteSeconds);
    cell.longestWait.observe(request.longestWaitSeconds);
    cell.size.observe(request.bytes);
    if (request.result === 'hit' && request.requester === 'client')
      this.#lastSuccess.set(request.source, nowMs / 1000);
  }

  #cellOf(r: CountedRequest): Cell {
    let slots = this.#index.get(r.registryLabel);
    if (slots === undefined) {
      slots = new Array<Cell | undefined>(SLOTS).fill(undefined);
      this.#index.set(r.registryLabel, slots);
    }
    const slot =
      ((KINDS[r.kind] * 5 + SOURCES[r.source]) * 6 + RESULTS[r.result]) * 2 + REQUESTERS[r.requester];
    let cell = slots[slot];
    if (cell === undefined) {
      cell = {
        registry: r.registryLabel,
        kind: r.kind,
        source: r.source,
        result: r.result,
        requester: r.requester,
        requests: 0,
        bytes: 0,
        duration: new Buckets(SECONDS_BUCKETS),
        firstByte: new Buckets(SECONDS_BUCKETS),
        longestWait: new Buckets(SECONDS_BUCKETS),
        size: new Buckets(SIZE_BUCKETS),
      };
      slots[slot] = cell;
      this.#cells.push(cell);
    }
    return cell;
  }
}

function labelsOf(cell: Cell, names: Array<keyof Cell>): Record<string, string> {
  return Object.fromEntries(names.map((name) => [name, String(cell[name])]));
}

/** One sample per distinct value of `names`, summing `value` over the cells that share it. */
function sumBy(cells: Cell[], names: Array<keyof Cell>, value: (cell: Cell) => number): Sample[] {
  const sums = new Map<string, Sample>();
  for (const cell of cells) {
    const labels = labelsOf(cell, names);
    const key = JSON.stringify(labels);
    const sample = sums.get(key) ?? { labels, value: 0 };
    sample.value += value(cell);
    sums.set(key, sample);
  }
  return [...sums.values()];
}

/** The histogram samples of `pick`, merged over the cells that share the values of `names`. */
function bucketsBy(
  name: string,
  cells: Cell[],
  names: Array<keyof Cell>,
  pick: (cell: Cell) => Buckets,
): Sample[] {
  const merged = new Map<string, { labels: Record<string, string>; buckets: Buckets }>();
  for (const cell of cells) {
    const labels = labelsOf(cell, names);
    const key = JSON.stringify(labels);
    let entry = merged.get(key);
    if (entry === undefined) {
      entry = { labels, buckets: new Buckets(pick(cell).bounds) };
      merged.set(key, entry);
    }
    entry.buckets.add(pick(cell));
  }
  return [...merged.values()].flatMap(({ labels, buckets }) => histogramSamples(name, labels, buckets));
}
