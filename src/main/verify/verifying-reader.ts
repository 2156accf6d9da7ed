import { ContentCorruptError } from '../errors.js';
import type { ByteRange } from '../oci/range.js';
import type { BlobReader } from '../store/store.js';
import type { HashSession, Verdict } from './verifier.js';

/** Told once, when the content failed its check (before the reader throws). */
export type OnCorrupt = (verdict: Verdict) => void;

/**
 * Serves `range` of a blob read whole from an untrusted source (`source` covers bytes 0..size-1), hashing
 * every byte in a worker as it passes. Bytes before the range are hashed and dropped; bytes after it are
 * read and hashed behind the scenes. The chunk that completes the range is held back until the whole blob
 * has matched its digest, so a client never receives a complete body, ranged or not, that rests on
 * unchecked bytes: on a mismatch `read` throws and the server cuts the connection instead.
 *
 * Buffers handed to `read` may be refilled only after the worker is done with them; the reader waits for
 * that itself before reusing a buffer it was given earlier.
 */
export class VerifyingReader implements BlobReader {
  readonly #source: BlobReader;
  readonly #session: HashSession;
  readonly #range: ByteRange;
  readonly #size: number;
  readonly #onCorrupt: OnCorrupt;
  readonly #newScratch: () => Buffer;
  /** Next byte of the blob to read from the source. */
  #position = 0;
  /** The last chunk queued from each buffer's memory (by its backing store), which hashing may still read. */
  readonly #inFlight = new Map<ArrayBufferLike, number>();
  #verified = false;
  #closed = false;

  constructor(
    source: BlobReader,
    session: HashSession,
    opts: { range: ByteRange; size: number; onCorrupt: OnCorrupt; scratch: () => Buffer },
  ) {
    this.#source = source;
    this.#session = session;
    this.#range = opts.range;
    this.#size = opts.size;
    this.#onCorrupt = opts.onCorrupt;
    this.#newScratch = opts.scratch;
  }

  async read(into: Buffer): Promise<number> {
    if (this.#position > this.#range.end) return 0;
    // Everything before the range is hashed and dropped, through the caller's buffer.
    while (this.#position < this.#range.start) {
      await this.#pull(into.subarray(0, Math.min(into.length, this.#range.start - this.#position)));
    }
    const wanted = Math.min(into.length, this.#range.end - this.#position + 1);
    const n = await this.#pull(into.subarray(0, wanted));
    if (this.#position > this.#range.end) await this.#verifyRest();
    return n;
  }

  async idle(): Promise<void> {
    for (const memory of [...this.#inFlight.keys()]) await this.#released(memory);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#verified) this.#session.abort();
    await this.#source.close();
  }

  /** Reads once from the source into `into` and queues the bytes for hashing; 0 only past the end. */
  async #pull(into: Buffer): Promise<number> {
    await this.#released(into.buffer);
    const n = await this.#source.read(into);
    if (n === 0) {
      throw new ContentCorruptError(`source ended at ${this.#position} of ${this.#size} bytes`);
    }
    this.#position += n;
    this.#inFlight.set(into.buffer, this.#session.update(into.subarray(0, n)));
    return n;
  }

  /** Waits until the worker no longer reads `memory` (it may still hash a chunk queued from it). */
  async #released(memory: ArrayBufferLike): Promise<void> {
    const seq = this.#inFlight.get(memory);
    if (seq !== undefined) await this.#session.hashed(seq);
  }

  /** Reads and hashes what follows the range, then holds the caller until the verdict is in. */
  async #verifyRest(): Promise<void> {
    if (this.#position < this.#size) {
      const scratch = this.#newScratch();
      while (this.#position < this.#size) {
        await this.#pull(scratch.subarray(0, Math.min(scratch.length, this.#size - this.#position)));
      }
      await this.#released(scratch.buffer);
    }
    const verdict = await this.#session.finish();
    if (!verdict.ok) {
      this.#onCorrupt(verdict);
      throw new ContentCorruptError(
        `content does not match its digest (${verdict.code}: got ${verdict.digest || 'nothing'}, ${verdict.bytes} bytes)`,
      );
    }
    this.#verified = true;
  }
}
