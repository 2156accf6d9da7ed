import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../errors.js';
import type { BlobReader } from '../store/store.js';
import type { PeerBody } from './peer-body.js';

const RESUME_ATTEMPTS = 3;
const RESUME_RETRY_MS = 300;
/** A read returns once it has this much (or the range's end), unless the body stops. */
const FILL_TARGET_BYTES = 512 << 10;

/** A body being received, and the peer it comes from. */
export interface PeerStream {
  body: PeerBody;
  /** The peer's id. */
  peer: string;
  /** The peer's registry base URL. */
  registry: string;
}

/**
 * Opens the rest of the range, from `offset`, on a live peer other than those that failed (`failed` is
 * quarantined first); undefined when nobody can.
 */
export type ResumeAt = (offset: number, failed: string) => Promise<PeerStream | undefined>;

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
    let filled = this.#body?.drain(into, 0, want) ?? 0;
    while (filled === 0) {
      if (!(await this.#dataOrEnd())) await this.#resume();
      filled = this.#body?.drain(into, 0, want) ?? 0;
    }
    // A socket read brings 64-512 KiB. Waiting for a fuller buffer costs microseconds and saves the
    // per-chunk work downstream (a client write, a digest message) many times over.
    const target = Math.min(want, FILL_TARGET_BYTES);
    while (filled < target && (await this.#dataOrEnd()))
      filled = this.#body?.drain(into, filled, want) ?? filled;
    this.#position += filled;
    return filled;
  }

  async close(): Promise<void> {
    this.#body?.destroy();
    this.#body = undefined;
  }

  /** True once bytes are waiting; false when the current body ended, failed or stalled with none. */
  async #dataOrEnd(): Promise<boolean> {
    const body = this.#body;
    if (body === undefined) return false;
    if (body.available > 0) return true;
    if (body.finished) return false;
    await body.wait(this.#readTimeoutMs);
    return body.available > 0;
  }

  #follow(next: PeerStream): void {
    this.peers.set(next.peer, next.registry);
    this.#body = next.body;
    this.#peer = next.peer;
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
    this.#onResume?.();
    this.#follow(next);
  }
}
