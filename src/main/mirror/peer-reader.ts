import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../errors.js';
import type { BlobReader } from '../store/store.js';
import { withTimeout } from '../util/timeout.js';

const RESUME_ATTEMPTS = 3;
const RESUME_RETRY_MS = 300;

/** A body being received, and the peer it comes from. */
export interface PeerBody {
  body: IncomingMessage;
  /** The peer's id. */
  peer: string;
  /** The peer's registry base URL. */
  registry: string;
}

/**
 * Opens the rest of the range, from `offset`, on a live peer other than those that failed (`failed` is
 * quarantined first); undefined when nobody can.
 */
export type ResumeAt = (offset: number, failed: string) => Promise<PeerBody | undefined>;

/**
 * Reads a byte range from a peer's response body and, when that peer dies or stalls mid-body, continues
 * from the next byte on another peer (a Range request), so the client sees one unbroken body. When no
 * peer can finish it, `read` throws and the server cuts the client off: never a short "success".
 */
export class PeerBlobReader implements BlobReader {
  #body: IncomingMessage | undefined;
  #peer: string;
  readonly #resumeAt: ResumeAt;
  readonly #readTimeoutMs: number;
  #position: number;
  readonly #end: number;
  #pending: Buffer = Buffer.alloc(0);
  /** How many times the body moved to another peer; for tests and metrics. */
  resumes = 0;
  /** Every peer that sent part of the body (id → registry URL): the suspects when it fails its digest. */
  readonly peers = new Map<string, string>();
  readonly #onResume: (() => void) | undefined;

  constructor(
    first: PeerBody,
    range: { start: number; end: number },
    resumeAt: ResumeAt,
    readTimeoutMs: number,
    onResume?: () => void,
  ) {
    this.#onResume = onResume;
    this.peers.set(first.peer, first.registry);
    this.#body = first.body;
    this.#peer = first.peer;
    this.#position = range.start;
    this.#end = range.end;
    this.#resumeAt = resumeAt;
    this.#readTimeoutMs = readTimeoutMs;
  }

  async read(into: Buffer): Promise<number> {
    const left = this.#end - this.#position + 1;
    if (left <= 0) return 0;
    while (this.#pending.length === 0) {
      const chunk = await this.#nextChunk();
      if (chunk !== undefined) {
        this.#pending = chunk;
        break;
      }
      await this.#resume();
    }
    const n = this.#pending.copy(into, 0, 0, Math.min(into.length, left));
    this.#pending = this.#pending.subarray(n);
    this.#position += n;
    return n;
  }

  async close(): Promise<void> {
    this.#body?.destroy();
    this.#body = undefined;
  }

  /** The next chunk of the current body, or undefined when that body ended, failed or stalled. */
  async #nextChunk(): Promise<Buffer | undefined> {
    const body = this.#body;
    if (body === undefined) return undefined;
    for (;;) {
      const chunk = body.read() as Buffer | null;
      if (chunk !== null) return chunk;
      if (body.readableEnded || body.destroyed) return undefined;
      // Wait for data, end, close or error; the listeners left over are removed through the signal.
      const stop = new AbortController();
      const waits = ['readable', 'end', 'close'].map((event) => once(body, event, { signal: stop.signal }));
      for (const wait of waits) wait.catch(() => undefined);
      try {
        await withTimeout(Promise.race(waits), this.#readTimeoutMs, 'peer body');
      } catch {
        return undefined;
      } finally {
        stop.abort();
      }
    }
  }

  async #resume(): Promise<void> {
    this.#body?.destroy();
    this.#body = undefined;
    // The peer that broke off is not asked again: one that keeps sending part of a body and closing would
    // otherwise be resumed from forever (the stall containerd itself falls into).
    let next = await this.#resumeAt(this.#position, this.#peer);
    // Right after a peer dies the DHT and the peers' answers are briefly unsettled: try a few times.
    for (let attempt = 1; next === undefined && attempt < RESUME_ATTEMPTS; attempt++) {
      await sleep(RESUME_RETRY_MS);
      next = await this.#resumeAt(this.#position, this.#peer);
    }
    if (next === undefined) {
      throw new StoreUnavailableError(`no peer could finish the body from byte ${this.#position}`);
    }
    this.resumes++;
    this.#onResume?.();
    this.peers.set(next.peer, next.registry);
    this.#body = next.body;
    this.#peer = next.peer;
  }
}
