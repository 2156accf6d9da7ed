import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../errors.js';
import type { BlobReader } from '../store/store.js';
import type { PeerBody } from './peer-body.js';

const RESUME_ATTEMPTS = 3;
const RESUME_RETRY_MS = 300;
/** A read returns once it has this much (or the range's end), unless the body stops. */
const FILL_TARGET_BYTES = 512 << 10;
/**
 * A body that brings less than this in a whole read window (`readTimeoutMs`) trickles: what it sent is
 * kept, and the rest is asked of another peer. 64 KiB in 1.5 s is 43 KB/s, far below any working link.
 */
const TRICKLE_FLOOR_BYTES = 64 << 10;
/** Longest one read spends moving to other peers; the server's own store read bound is 5 s. */
const RESUME_BUDGET_MS = 3500;

/** A body being received, and the peer it comes from. */
export interface PeerStream {
  body: PeerBody;
  /** The peer's id. */
  peer: string;
  /** The peer's registry base URL. */
  registry: string;
}

/**
 * Opens the rest of the range, from `offset`, on a live peer other than the one that failed (`failed` is
 * set aside first, as `silent` when it stalled or trickled rather than broke off); undefined when nobody can.
 */
export type ResumeAt = (offset: number, failed: string, silent: boolean) => Promise<PeerStream | undefined>;

/**
 * Reads a byte range from a peer's response body and, when that peer dies or stalls mid-body, continues
 * from the next byte on another peer (a Range request), so the client sees one unbroken body. When no
 * peer can finish it, `read` throws and the server cuts the client off: never a short "success".
 */
export class PeerBlobReader implements BlobReader {
  #body: PeerBody | undefined;
  #peer = '';
  readonly #resumeAt: ResumeAt;
  readonly #readTimeoutMs: number;
  #position: number;
  readonly #end: number;
  /** Every peer that sent part of the body (id → registry URL): the suspects when it fails its digest. */
  readonly peers = new Map<string, string>();
  readonly #onResume: (() => void) | undefined;

  constructor(
    first: PeerStream,
    range: { start: number; end: number },
    resumeAt: ResumeAt,
    readTimeoutMs: number,
    onResume?: () => void,
  ) {
    this.#onResume = onResume;
    this.#position = range.start;
    this.#end = range.end;
    this.#resumeAt = resumeAt;
    this.#readTimeoutMs = readTimeoutMs;
    this.#follow(first);
  }

  async read(into: Buffer): Promise<number> {
    const want = Math.min(into.length, this.#end - this.#position + 1);
    if (want <= 0) return 0;
    const start = this.#position;
    let filled = 0;
    const drain = (): void => {
      filled = this.#body?.drain(into, filled, want) ?? filled;
      this.#position = start + filled;
    };
    drain();
    while (filled === 0) {
      if (!(await this.#dataOrEnd(this.#readTimeoutMs))) await this.#resume();
      drain();
    }
    // A socket read brings 64-512 KiB. Waiting for a fuller buffer costs microseconds and saves the
    // per-chunk work downstream (a client write, a digest message) many times over.
    const target = Math.min(want, FILL_TARGET_BYTES);
    let windowEnds = performance.now() + this.#readTimeoutMs;
    while (filled < target) {
      const left = windowEnds - performance.now();
      if (left > 0 && (await this.#dataOrEnd(left))) {
        drain();
        continue;
      }
      // Ended or broken: the next read moves on. Slow, but at a working rate: what came is returned.
      const body = this.#body;
      if (body === undefined || body.finished || filled >= Math.min(want, TRICKLE_FLOOR_BYTES)) break;
      // A byte a second would keep the client waiting forever on "progress": what the peer sent is kept,
      // and the rest of this read comes from another peer (or, with none, the read fails before any of it
      // reaches the client, when it is the first).
      await this.#resume();
      windowEnds = performance.now() + this.#readTimeoutMs;
    }
    return filled;
  }

  async close(): Promise<void> {
    this.#body?.destroy();
    this.#body = undefined;
  }

  /** True once bytes are waiting; false when the current body ended, failed or brought none in `ms`. */
  async #dataOrEnd(ms: number): Promise<boolean> {
    const body = this.#body;
    if (body === undefined) return false;
    if (body.available > 0) return true;
    if (body.finished) return false;
    await body.wait(ms);
    return body.available > 0;
  }

  #follow(next: PeerStream): void {
    this.peers.set(next.peer, next.registry);
    this.#body = next.body;
    this.#peer = next.peer;
  }

  async #resume(): Promise<void> {
    // A body still open that brings nothing (or next to nothing) is a silent peer; one that ended broke off.
    const silent = this.#body?.finished === false;
    this.#body?.destroy();
    this.#body = undefined;
    // The peer that broke off is not asked again: one that keeps sending part of a body and closing would
    // otherwise be resumed from forever (the stall containerd itself falls into).
    const giveUpAt = performance.now() + RESUME_BUDGET_MS;
    let next = await this.#resumeAt(this.#position, this.#peer, silent);
    // Right after a peer dies the DHT and the peers' answers are briefly unsettled: try a few times, while
    // the read still has time (past it, the server gives up on the read and cuts the client anyway).
    for (
      let attempt = 1;
      next === undefined && attempt < RESUME_ATTEMPTS && performance.now() + RESUME_RETRY_MS < giveUpAt;
      attempt++
    ) {
      await sleep(RESUME_RETRY_MS);
      next = await this.#resumeAt(this.#position, this.#peer, silent);
    }
    if (next === undefined) {
      throw new StoreUnavailableError(`no peer could finish the body from byte ${this.#position}`);
    }
    this.#onResume?.();
    this.#follow(next);
  }
}
