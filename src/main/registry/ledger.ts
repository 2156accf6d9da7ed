import type { Logger } from '../log/logger.js';
import type {
  CountedRequest,
  Requester,
  RequestRecorder,
  RequestResult,
  RequestSource,
} from '../metrics/requests.js';
import { newTrace, type RequestTrace } from './trace.js';

/** One finished request as the log line, the debug page and the summary see it. */
export type FinishedRequest = {
  method: string;
  registry: string | undefined;
  repository: string | undefined;
  kind: CountedRequest['kind'];
  /** The tag or digest asked for. */
  reference: string | undefined;
  /** The digest served, when content was found. */
  digest: string | undefined;
  source: RequestSource;
  /** The peer (or elected owner) that sent the bytes. */
  peer: string | undefined;
  status: number;
  result: RequestResult;
  bytes: number;
  ms: number;
  requester: Requester;
  /** The member that asked, for a peer request. */
  member: string | undefined;
};

/** A finished request as the debug page lists it: with when it ended (ms since the epoch). */
export type RecentRequest = FinishedRequest & { at: number };

/** How a request ended at its listener. */
export interface Ending {
  method: string;
  status: number;
  /** Body bytes the client received. */
  bytes: number;
  /** The response stopped before it was complete (the client left, or shoal cut it). */
  cut: boolean;
}

/** A request being answered: its trace for the handler, and the clock for the listener. */
export interface OpenRequest {
  readonly trace: RequestTrace;
  /** Marks the first byte of the body (or the head, for a reply without one); the first call counts. */
  firstByte(): void;
  /** Counts, logs and remembers the request; later calls do nothing. */
  end(ending: Ending): void;
}

export interface RequestLedgerInit {
  /** Registries counted under their own name (`--mirrored-registries`, as hosts); others count as `other`. */
  mirroredRegistries: readonly string[];
  /** Finished requests kept for the debug page; default 100. */
  recent?: number;
  /** Time between summary lines, in ms; default 5 minutes. */
  summaryMs?: number;
}

interface Window {
  requests: Record<string, number>;
  bytes: Record<string, number>;
  hits: number;
  misses: number;
}

const emptyWindow = (): Window => ({ requests: {}, bytes: {}, hits: 0, misses: 0 });

/**
 * Every client request, counted once where it ends, whichever listener answered it: a metric sample, one
 * log line, a place among the last requests the debug page shows, and its share of the summary line logged
 * every few minutes. A request is classified from what the handler learnt (its trace) and how it ended.
 */
export class RequestLedger {
  readonly #recorder: RequestRecorder;
  readonly #log: Logger;
  readonly #mirrored: ReadonlySet<string>;
  readonly #recent: Array<FinishedRequest | undefined>;
  /** When each of `#recent` ended. */
  readonly #recentAt: Float64Array;
  #next = 0;
  #lastHit: RecentRequest | undefined;
  #window = emptyWindow();
  readonly #summaryMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: { recorder: RequestRecorder; log: Logger }, init: RequestLedgerInit) {
    this.#recorder = deps.recorder;
    this.#log = deps.log;
    this.#mirrored = new Set(init.mirroredRegistries.map((host) => host.toLowerCase()));
    this.#recent = new Array(init.recent ?? 100).fill(undefined);
    this.#recentAt = new Float64Array(this.#recent.length);
    this.#summaryMs = init.summaryMs ?? 300_000;
  }

  /** Starts the summary line; `members` counts the node's live peers at each summary. */
  start(members: () => number): void {
    this.#timer = setInterval(() => this.#summarise(members()), this.#summaryMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
  }

  begin(): OpenRequest {
    const trace = newTrace();
    const started = performance.now();
    let firstByteAt = 0;
    let ended = false;
    return {
      trace,
      firstByte: () => {
        if (firstByteAt === 0) firstByteAt = performance.now();
      },
      end: (ending) => {
        if (ended) return;
        ended = true;
        if (!trace.probe) this.#finish(trace, ending, started, firstByteAt);
      },
    };
  }

  /** The last finished requests, newest first. */
  recent(): RecentRequest[] {
    const size = this.#recent.length;
    const out: RecentRequest[] = [];
    for (let i = 1; i <= size; i++) {
      const slot = (this.#next - i + size) % size;
      const entry = this.#recent[slot];
      if (entry !== undefined) out.push({ ...entry, at: this.#recentAt[slot] as number });
    }
    return out;
  }

  /** The last client request that was served. */
  get lastHit(): RecentRequest | undefined {
    return this.#lastHit;
  }

  #finish(trace: RequestTrace, ending: Ending, started: number, firstByteAt: number): void {
    const now = performance.now();
    const at = Date.now();
    const result = resultOf(trace, ending);
    const served = result === 'hit' || result === 'redirect' || result === 'cut';
    const source: RequestSource = served
      ? (trace.content?.source?.kind ?? trace.source ?? sourceOfContent(trace))
      : 'none';
    const requester: Requester = trace.member === undefined ? 'client' : 'member';
    const ms = now - started;
    const registry =
      trace.registry !== undefined && this.#mirrored.has(trace.registry) ? trace.registry : 'other';
    this.#recorder.record(
      {
        registry,
        kind: trace.kind,
        source,
        result,
        requester,
        bytes: ending.bytes,
        seconds: ms / 1000,
        firstByteSeconds: ((firstByteAt === 0 ? now : firstByteAt) - started) / 1000,
      },
      at,
    );
    const finished: FinishedRequest = {
      method: ending.method,
      registry: trace.registry,
      repository: trace.repository,
      kind: trace.kind,
      reference: trace.reference,
      digest: trace.content?.digest,
      source,
      peer: served ? trace.content?.source?.peer : undefined,
      status: ending.status,
      result,
      bytes: ending.bytes,
      ms: Math.round(ms * 10) / 10,
      requester,
      member: trace.member,
    };
    this.#log.info(finished, 'request');
    this.#recent[this.#next] = finished;
    this.#recentAt[this.#next] = at;
    this.#next = (this.#next + 1) % this.#recent.length;
    if (requester === 'member' || result === 'redirect') return;
    if (result === 'hit') this.#lastHit = { ...finished, at };
    const window = this.#window;
    window.requests[source] = (window.requests[source] ?? 0) + 1;
    window.bytes[source] = (window.bytes[source] ?? 0) + ending.bytes;
    if (result === 'hit') window.hits++;
    if (result === 'miss') window.misses++;
  }

  #summarise(members: number): void {
    const { requests, bytes, hits, misses } = this.#window;
    this.#window = emptyWindow();
    const hitRatio = hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 1000) / 1000;
    this.#log.info(
      { requests, bytes, hitRatio, members, windowMs: this.#summaryMs },
      'summary of client requests since the last summary',
    );
  }
}

/** Content found without a source of its own is the node's own; nothing found, nothing served. */
function sourceOfContent(trace: RequestTrace): RequestSource {
  return trace.content === undefined ? 'none' : 'local';
}

function resultOf(trace: RequestTrace, ending: Ending): RequestResult {
  if (ending.cut) return 'cut';
  if (ending.status === 307) return 'redirect';
  if (ending.status < 400) return 'hit';
  if (trace.filtered) return 'filtered';
  if (ending.status === 404) return 'miss';
  return 'error';
}
