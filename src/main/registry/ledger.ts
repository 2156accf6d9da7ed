import { infoLineWriter, jsonString, type Logger } from '../log/logger.js';
import type {
  CountedRequest,
  Requester,
  RequestRecorder,
  RequestResult,
  RequestSource,
} from '../metrics/requests.js';
import type { RequestTrace } from './trace.js';

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
  /** Why a request that was not served found nothing (the providers found, each one's failure). */
  why: string | undefined;
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
  /** The longest a streamed body waited for its reader's next bytes, after the first (ms). */
  longestWaitMs?: number;
}

/**
 * A request being answered: the handler writes its trace (this object), the listener marks its first byte
 * and ends it. It is the only object counting allocates per request: once ended, it holds how the request
 * was counted, and the ring of recent requests keeps it as it is.
 */
export class OpenRequest implements RequestTrace, CountedRequest {
  kind: RequestTrace['kind'] = 'other';
  registry: string | undefined = undefined;
  repository: string | undefined = undefined;
  reference: string | undefined = undefined;
  content: RequestTrace['content'] = undefined;
  origin: RequestTrace['origin'] = undefined;
  source: RequestSource = 'none';
  filtered = false;
  member: string | undefined = undefined;
  probe = false;
  // What it was counted as, once ended.
  registryLabel = 'other';
  result: RequestResult = 'error';
  requester: Requester = 'client';
  method = '';
  status = 0;
  bytes = 0;
  seconds = 0;
  firstByteSeconds = 0;
  longestWaitSeconds = 0;
  /** When it ended (ms since the epoch, from the monotonic clock's origin: no second clock read). */
  at = 0;
  readonly #ledger: RequestLedger;
  readonly #started = performance.now();
  #firstByteAt = 0;
  #ended = false;

  constructor(ledger: RequestLedger) {
    this.#ledger = ledger;
  }

  /** What the handler writes into. */
  get trace(): RequestTrace {
    return this;
  }

  /** Marks the first byte of the body (or the head, for a reply without one); the first call counts. */
  firstByte(): void {
    if (this.#firstByteAt === 0) this.#firstByteAt = performance.now();
  }

  /** Counts, logs and remembers the request; later calls do nothing. */
  end(ending: Ending): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.probe) return;
    const now = performance.now();
    this.method = ending.method;
    this.status = ending.status;
    this.bytes = ending.bytes;
    this.seconds = (now - this.#started) / 1000;
    this.firstByteSeconds = ((this.#firstByteAt === 0 ? now : this.#firstByteAt) - this.#started) / 1000;
    this.longestWaitSeconds = Math.max(this.firstByteSeconds, (ending.longestWaitMs ?? 0) / 1000);
    this.at = performance.timeOrigin + now;
    this.result = resultOf(this, ending);
    const served = this.result === 'hit' || this.result === 'cut';
    // The found content's source; else one the handler set (a tag list from upstream, the API ping); else
    // the node's own for content without a source of its own; else nothing was served.
    const own = this.source === 'none' ? undefined : this.source;
    this.source = served
      ? (this.content?.source?.kind ?? own ?? (this.content === undefined ? 'none' : 'local'))
      : 'none';
    this.requester = this.member === undefined ? 'client' : 'member';
    this.#ledger.finish(this);
  }

  /**
   * The log line's fields as JSON, built from this one shape directly: the fields of `record()`, in its
   * order, those that are undefined left out (as pino leaves them out).
   */
  jsonFields(): string {
    const served = this.source !== 'none';
    const peer = served ? this.content?.source?.peer : undefined;
    const digest = this.content?.digest;
    let fields = `"method":${jsonString(this.method)}`;
    if (this.registry !== undefined) fields += `,"registry":${jsonString(this.registry)}`;
    if (this.repository !== undefined) fields += `,"repository":${jsonString(this.repository)}`;
    fields += `,"kind":"${this.kind}"`;
    if (this.reference !== undefined) fields += `,"reference":${jsonString(this.reference)}`;
    if (digest !== undefined) fields += `,"digest":${jsonString(digest)}`;
    fields += `,"source":"${this.source}"`;
    if (peer !== undefined) fields += `,"peer":${jsonString(peer)}`;
    fields += `,"status":${this.status},"result":"${this.result}","bytes":${this.bytes}`;
    fields += `,"ms":${Math.round(this.seconds * 10_000) / 10},"requester":"${this.requester}"`;
    if (this.member !== undefined) fields += `,"member":${jsonString(this.member)}`;
    const why = this.why;
    if (why !== undefined) fields += `,"why":${jsonString(why)}`;
    return fields;
  }

  /** Why nothing was served, as the stores noted it; only for a request that was not a hit. */
  get why(): string | undefined {
    return this.result === 'hit' ? undefined : this.origin?.why;
  }

  /** The request as the log line and the debug page show it. */
  record(): FinishedRequest {
    const served = this.source !== 'none';
    return {
      method: this.method,
      registry: this.registry,
      repository: this.repository,
      kind: this.kind,
      reference: this.reference,
      digest: this.content?.digest,
      source: this.source,
      peer: served ? this.content?.source?.peer : undefined,
      status: this.status,
      result: this.result,
      bytes: this.bytes,
      ms: Math.round(this.seconds * 10_000) / 10,
      requester: this.requester,
      member: this.member,
      why: this.why,
    };
  }
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
  readonly #recent: Array<OpenRequest | undefined>;
  #next = 0;
  #lastHit: OpenRequest | undefined;
  #window = emptyWindow();
  readonly #summaryMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** Each request's info line, built directly (see infoLineWriter); undefined: through `log.info`. */
  readonly #line: ((fields: string) => void) | undefined;
  /** Whether each request gets its info line at all. */
  readonly #logEach: boolean;

  constructor(deps: { recorder: RequestRecorder; log: Logger }, init: RequestLedgerInit) {
    this.#recorder = deps.recorder;
    this.#log = deps.log;
    this.#logEach = deps.log.isLevelEnabled?.('info') ?? true;
    this.#line = infoLineWriter(deps.log, 'request');
    this.#mirrored = new Set(init.mirroredRegistries.map((host) => host.toLowerCase()));
    this.#recent = new Array(init.recent ?? 100).fill(undefined);
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
    return new OpenRequest(this);
  }

  /** The last finished requests, newest first. */
  recent(): RecentRequest[] {
    const size = this.#recent.length;
    const out: RecentRequest[] = [];
    for (let i = 1; i <= size; i++) {
      const entry = this.#recent[(this.#next - i + size) % size];
      if (entry !== undefined) out.push({ ...entry.record(), at: entry.at });
    }
    return out;
  }

  /** The last client request that was served. */
  get lastHit(): RecentRequest | undefined {
    const hit = this.#lastHit;
    return hit === undefined ? undefined : { ...hit.record(), at: hit.at };
  }

  /** A request ended: counted, logged, kept among the recent ones, and added to the summary. */
  finish(request: OpenRequest): void {
    const registry = request.registry;
    request.registryLabel = registry !== undefined && this.#mirrored.has(registry) ? registry : 'other';
    this.#recorder.record(request, request.at);
    if (this.#line !== undefined) this.#line(request.jsonFields());
    else if (this.#logEach) this.#log.info(request.record(), 'request');
    this.#recent[this.#next] = request;
    this.#next = (this.#next + 1) % this.#recent.length;
    if (request.requester === 'member') return;
    if (request.result === 'hit') this.#lastHit = request;
    const window = this.#window;
    window.requests[request.source] = (window.requests[request.source] ?? 0) + 1;
    window.bytes[request.source] = (window.bytes[request.source] ?? 0) + request.bytes;
    if (request.result === 'hit') window.hits++;
    if (request.result === 'miss') window.misses++;
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

function resultOf(trace: RequestTrace, ending: Ending): RequestResult {
  if (ending.cut) return 'cut';
  if (ending.status < 400) return 'hit';
  if (trace.filtered) return 'filtered';
  if (ending.status === 404) return 'miss';
  return 'error';
}
