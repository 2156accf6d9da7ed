import { type FileHandle, open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  BlobUnknownError,
  ContentCorruptError,
  DiskFullError,
  StoreUnavailableError,
  UpstreamUnavailableError,
} from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { ByteRange } from '../oci/range.js';
import { withResolvers } from '../polyfill.js';
import { writeAll, writing } from '../store/disk.js';
import type { BlobReader } from '../store/store.js';
import type { DigestVerifier, Verdict } from '../verify/verifier.js';

export interface SpoolInit {
  /** Longest silence from the source, or wait of a reader without progress, in ms; default 30 000. */
  stallMs?: number;
  /**
   * The slowest the source may send once its headers are in, in bytes per second, judged over each
   * `stallMs`; default 0 (silence alone fails it). A source under it is dropped, not resumed: it is slow,
   * not broken, and every reader is waiting on it.
   */
  minBytesPerSecond?: number;
}

export interface SpoolTarget {
  digest: Digest;
  size: number;
  /** The temporary file to write; it must not exist. */
  path: string;
  /** The body being downloaded (an upstream response). */
  source: Readable;
  /**
   * Asks the source again from byte `offset` when its body breaks off (a CDN that drops a connection): the
   * spool goes on from where it is, and its readers never see the break. Without it, a break fails the spool.
   */
  resume?: (offset: number) => Promise<Readable>;
}

/** Times a spool asks its source to resume before it gives up. */
export const SPOOL_RESUMES = 3;

/**
 * One blob being downloaded into a temporary file that any number of readers follow from byte 0 as it
 * grows: the one download that concurrent requests for a digest share. Every byte is hashed in the digest
 * workers as it is written. A reader's chunk that would complete its range is released only once the whole
 * blob has matched, so no reader ever receives a complete body of unchecked bytes. A verified file is handed
 * to `commit` (fsync is done; the caller renames it into its store and returns where it now is); readers
 * still following keep their open file. On any failure the temporary file is removed and every reader's next read throws.
 */
export class Spool {
  readonly digest: Digest;
  readonly size: number;
  /** Settles once the blob is verified and committed (its verdict), or failed. */
  readonly done: Promise<Verdict>;
  readonly #path: string;
  readonly #stallMs: number;
  readonly #minRate: number;
  #written = 0;
  #verified = false;
  /** Settles once the temporary file exists (or could not be made): readers open it only after. */
  readonly #created = withResolvers<void>();
  /** Where the commit put the file; readers that come later open it there. */
  #committedPath: string | undefined;
  #failure: Error | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(
    deps: { verifier: DigestVerifier },
    target: SpoolTarget,
    commit: (path: string) => Promise<string>,
    init: SpoolInit = {},
  ) {
    this.digest = target.digest;
    this.size = target.size;
    this.#path = target.path;
    this.#stallMs = init.stallMs ?? 30_000;
    this.#minRate = init.minBytesPerSecond ?? 0;
    this.#created.promise.catch(() => undefined);
    this.done = this.#download(deps.verifier, target, commit);
    this.done.catch(() => undefined);
  }

  /** Bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /** A reader of `range` that follows the file as it grows (or reads the committed file, once it is). */
  async reader(range: ByteRange): Promise<BlobReader> {
    if (this.#failure !== undefined) throw this.#failure;
    await this.#created.promise;
    try {
      return new SpoolReader(this, await open(this.#committedPath ?? this.#path, 'r'), range);
    } catch (err) {
      // Renamed away by the commit a moment ago: read it where the commit put it.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.done;
      try {
        return new SpoolReader(this, await open(this.#committedPath ?? this.#path, 'r'), range);
      } catch (cause) {
        // Committed, then already evicted from a cache bounded below this blob's size.
        throw new BlobUnknownError(`${this.digest} is no longer held`, { cause });
      }
    }
  }

  /**
   * Resolves once at least `count` bytes are written, or, with `verified`, once the whole blob has matched.
   * Throws when the spool failed, or when nothing moved for the stall limit.
   */
  async wait(count: number, verified: boolean): Promise<void> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#verified || (!verified && this.#written >= count)) return;
      if (!(await this.#progress())) {
        throw new StoreUnavailableError(`spool of ${this.digest} made no progress in ${this.#stallMs} ms`);
      }
    }
  }

  /** True at the next change (bytes written, verified, failed); false after the stall limit without one. */
  #progress(): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        resolve(false);
      }, this.#stallMs);
      this.#waiters.add(wake);
    });
  }

  #changed(): void {
    const waiting = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiting) wake();
  }

  async #download(
    verifier: DigestVerifier,
    target: SpoolTarget,
    commit: (path: string) => Promise<string>,
  ): Promise<Verdict> {
    const session = verifier.session(this.digest, this.size);
    let file: FileHandle | undefined;
    let source = target.source;
    try {
      const what = `the spool of ${this.digest}`;
      file = await writing(what, () => open(this.#path, 'wx', 0o644));
      this.#created.resolve();
      for (let resumes = 0; ; resumes++) {
        try {
          for await (const chunk of floored(source, this.#stallMs, this.#minRate)) {
            if (this.#written + chunk.length > this.size) {
              throw new ContentCorruptError(
                `the source sent more than the ${this.size} bytes of ${this.digest}`,
              );
            }
            session.update(chunk);
            await writeAll(file, chunk, this.#written, what);
            this.#written += chunk.length;
            this.#changed();
          }
          if (this.#written === this.size) break;
          throw new StoreUnavailableError(`the source of ${this.digest} ended at byte ${this.#written}`);
        } catch (err) {
          if (
            err instanceof ContentCorruptError ||
            err instanceof UpstreamUnavailableError ||
            // A full disk is this node's own failure: asking the source again would not help.
            err instanceof DiskFullError ||
            target.resume === undefined ||
            resumes >= SPOOL_RESUMES
          )
            throw err;
          source.destroy();
          source = await target.resume(this.#written);
        }
      }
      const verdict = await session.finish();
      if (!verdict.ok) {
        throw new ContentCorruptError(
          `${this.digest} failed its check: ${verdict.code}, got ${verdict.digest}`,
        );
      }
      const synced = file;
      await writing(what, () => synced.sync());
      await file.close();
      file = undefined;
      this.#committedPath = await commit(this.#path);
      this.#verified = true;
      this.#changed();
      return verdict;
    } catch (err) {
      session.abort();
      source.destroy();
      this.#failure = err instanceof Error ? err : new StoreUnavailableError(String(err));
      this.#created.reject(this.#failure);
      this.#changed();
      await file?.close().catch(() => undefined);
      await rm(this.#path, { force: true });
      throw this.#failure;
    }
  }
}

/**
 * The chunks of `source`, failing when a window of `windowMs` brings fewer than `minBytesPerSecond` ×
 * the window (at least one byte: silence always fails). A trickle thus ends within one window.
 */
async function* floored(
  source: Readable,
  windowMs: number,
  minBytesPerSecond: number,
): AsyncGenerator<Buffer> {
  const chunks = source[Symbol.asyncIterator]();
  const need = Math.max(1, Math.floor((minBytesPerSecond * windowMs) / 1000));
  let got = 0;
  let windowEnds = Date.now() + windowMs;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const judged = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            got === 0
              ? new StoreUnavailableError(`the source sent nothing for ${windowMs} ms`)
              : new UpstreamUnavailableError(
                  `the source sent ${got} bytes in ${windowMs} ms, under the floor of ${minBytesPerSecond} B/s`,
                ),
          ),
        Math.max(0, windowEnds - Date.now()),
      );
    });
    try {
      const next = await Promise.race([chunks.next(), judged]);
      if (next.done === true) return;
      got += (next.value as Buffer).length;
      if (got >= need) {
        got = 0;
        windowEnds = Date.now() + windowMs;
      }
      yield next.value as Buffer;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Reads a range of a spool's file as it grows. */
class SpoolReader implements BlobReader {
  readonly #spool: Spool;
  readonly #file: FileHandle;
  #position: number;
  readonly #end: number;
  #closed = false;

  constructor(spool: Spool, file: FileHandle, range: ByteRange) {
    this.#spool = spool;
    this.#file = file;
    this.#position = range.start;
    this.#end = range.end;
  }

  async read(into: Buffer): Promise<number> {
    const left = this.#end - this.#position + 1;
    if (left <= 0) return 0;
    await this.#spool.wait(this.#position + 1, false);
    let wanted = Math.min(into.length, left, this.#spool.written - this.#position);
    // The read that would complete the range waits until the whole blob has matched its digest.
    if (wanted === left) {
      await this.#spool.wait(this.#end + 1, true);
      wanted = Math.min(into.length, left);
    }
    const { bytesRead } = await this.#file.read(into, 0, wanted, this.#position);
    if (bytesRead === 0)
      throw new ContentCorruptError(`spool of ${this.#spool.digest} ended at ${this.#position}`);
    this.#position += bytesRead;
    return bytesRead;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#file.close();
  }
}
