import { ContentCorruptError, StoreUnavailableError } from '../errors.js';
import type { BlobReader } from '../store/store.js';
import { withTimeout } from '../util/timeout.js';
import type { BufferPool } from './buffer-pool.js';
import type { Ending } from './ledger.js';
import { type ParkBudget, settlesWithin } from './park.js';
import type { ByteRateLimiter } from './rate-limit.js';
import type { Pumped, StalledResponse, StallWatch } from './stall.js';
import type { HttpResponse } from './uws.js';

/** Per-connection state shared with the server's onAborted handler. */
export interface Connection {
  aborted: boolean;
  /** Set while a stream waits for the socket to drain, so an abort wakes it. */
  onAbort: (() => void) | undefined;
}

/**
 * Writes chunks with tryEnd and resumes from onWritable on backpressure. This uWS build keeps the first
 * onWritable handler a response registers, so one handler is registered per response and it serves
 * whichever chunk is pending; a per-chunk closure would resend a stale (since reused) buffer.
 */
class ChunkWriter implements Pumped {
  readonly #res: HttpResponse;
  readonly #total: number;
  readonly #connection: Connection;
  readonly #stalls: StallWatch;
  #pending: { chunk: Buffer; start: number; resolve: (written: boolean) => void } | undefined;
  /** Writes the status and headers: called once, in the same cork as the first chunk. */
  #head: (() => void) | undefined;
  #registered = false;
  #lastOffset = 0;
  #lastProgress = 0;

  constructor(
    res: HttpResponse,
    total: number,
    connection: Connection,
    stalls: StallWatch,
    head: () => void,
  ) {
    this.#head = head;
    this.#res = res;
    this.#total = total;
    this.#connection = connection;
    this.#stalls = stalls;
  }

  /** Resolves true once uWS has taken every byte (the buffer may be reused), false if the client left. */
  write(chunk: Buffer): Promise<boolean> {
    const start = this.#res.getWriteOffset();
    let result: [boolean, boolean] = [false, false];
    this.#res.cork(() => {
      this.#head?.();
      this.#head = undefined;
      result = this.#res.tryEnd(chunk, this.#total);
    });
    if (result[0] || result[1]) return Promise.resolve(true);
    this.#lastOffset = this.#res.getWriteOffset();
    this.#lastProgress = Date.now();
    return new Promise((resolve) => {
      this.#pending = { chunk, start, resolve };
      this.#connection.onAbort = () => this.#settle(false);
      this.#stalls.watch(this);
      if (!this.#registered) {
        this.#registered = true;
        this.#res.onWritable((offset) => this.#resume(offset));
      }
    });
  }

  /** Whether a write waits for the client to take bytes. */
  get waiting(): boolean {
    return this.#pending !== undefined;
  }

  /** Moves the pending write's unsent bytes to memory of their own, so its buffer may go back; returns their size. */
  moveToHeap(): number {
    const pending = this.#pending;
    if (pending === undefined) return 0;
    const offset = this.#res.getWriteOffset();
    pending.chunk = Buffer.from(pending.chunk.subarray(offset - pending.start));
    pending.start = offset;
    return pending.chunk.length;
  }

  /**
   * One tick of the stall watch: cut the response if its client took nothing for `idleMs`, else offer again.
   * Returns what was cut, or undefined.
   */
  pump(now: number, idleMs: number): StalledResponse | undefined {
    if (this.#pending === undefined || this.#connection.aborted) return undefined;
    const offset = this.#res.getWriteOffset();
    if (offset !== this.#lastOffset) {
      this.#lastOffset = offset;
      this.#lastProgress = now;
    }
    if (now - this.#lastProgress >= idleMs) {
      const cut = { sent: offset, total: this.#total, idleMs: now - this.#lastProgress };
      this.#settle(false);
      this.#res.close();
      return cut;
    }
    this.#res.cork(() => this.#resume(this.#res.getWriteOffset()));
    return undefined;
  }

  #resume(offset: number): boolean {
    const pending = this.#pending;
    if (pending === undefined) return true;
    const [ok, done] = this.#res.tryEnd(pending.chunk.subarray(offset - pending.start), this.#total);
    if (ok || done) this.#settle(true);
    return ok;
  }

  #settle(written: boolean): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    this.#connection.onAbort = undefined;
    this.#stalls.unwatch(this);
    pending.resolve(written);
  }
}

export interface StreamContext {
  pool: BufferPool;
  /** Longest wait for one store read, in ms. */
  timeoutMs: number;
  stalls: StallWatch;
  park: ParkBudget;
  limiter?: ByteRateLimiter | undefined;
  /**
   * Bytes of this stream the client has taken so far, whether its status went out, and the longest it
   * waited for the reader's next bytes (ms), kept up to date as it goes (also when it throws).
   */
  progress: StreamProgress;
}

export interface StreamProgress {
  sent: number;
  headed: boolean;
  longestWaitMs: number;
}

/** How a stream ended, as its request is counted: every byte sent (`complete`), or cut. */
export function streamEnding(
  status: number,
  progress: StreamProgress,
  complete: boolean,
): Omit<Ending, 'method'> {
  return { status, bytes: progress.sent, cut: !complete, longestWaitMs: progress.longestWaitMs };
}

/** A write still waiting after this long marks its client slower than the pool is meant for. */
const PARK_AFTER_MS = 50;
/**
 * What a parked stream reads at a time, into memory of its own. Shared memory, as the pool's is: a digest
 * worker hashes a peer's bytes in place instead of taking a copy. Not much smaller than a pooled read
 * either: a stream parked while the machine is busy, not its client slow, would otherwise pay the
 * per-chunk work (a read, a digest message, a write) many times over just when it can least afford it.
 */
const PARKED_CHUNK_BYTES = 256 << 10;

const parkedBuffer = (): Buffer => Buffer.from(new SharedArrayBuffer(PARKED_CHUNK_BYTES));

/**
 * Streams `total` bytes from a reader to a response, and gives `buffers` (borrowed from `ctx.pool`) back when done. Two pooled buffers alternate: the store fills
 * one while the socket drains the other, and nothing is read ahead of that, so a slow client slows the
 * disk read instead of growing memory.
 *
 * A client that keeps a write waiting past PARK_AFTER_MS is parked: its unsent bytes move to memory of
 * their own (bounded for all streams together by `ctx.park`), its pool buffers go back at once, and it is
 * served from then on in small reads, one at a time. So a slow or stalled reader never holds the pool that
 * fast clients draw from, and is never cut for being slow; only the stall watch cuts a reader that takes
 * nothing for --idle-timeout.
 * The status and headers (`head`) go out with the first chunk, once the reader has given it: a reader
 * that checks what it reads (a peer's bytes, a download) gives nothing it has not checked, so a body that
 * fails before its first byte leaves the status unsent, for the caller to answer with an error instead.
 * Returns the bytes the client took (fewer than `total` when it left). Throws when the body cannot be
 * finished; `ctx.progress.headed` then says whether the caller may still answer, or must cut.
 */
export async function streamBody(
  res: HttpResponse,
  reader: BlobReader,
  buffers: Buffer[],
  total: number,
  connection: Connection,
  ctx: StreamContext,
  head: () => void,
): Promise<number> {
  // Store reads still running. One that outlived its timeout may yet write into its buffer, which then
  // must never go back to the pool: another stream would get it with those bytes landing in it later.
  let running = 0;
  const read = (into: Buffer): Promise<number> => {
    running++;
    const raw = reader.read(into);
    raw.then(
      () => running--,
      () => running--,
    );
    const reading = withTimeout(
      raw,
      ctx.timeoutMs,
      'content store read',
      (message) => new StoreUnavailableError(message),
    );
    // A read-ahead may fail (a digest mismatch) while the chunk before it still waits to be written, long
    // before anyone awaits it; without a handler that is an unhandled rejection, which ends the process.
    reading.catch(() => undefined);
    return reading;
  };
  const writer = new ChunkWriter(res, total, connection, ctx.stalls, () => {
    head();
    ctx.progress.headed = true;
  });
  let [current, spare] = buffers as [Buffer, Buffer | undefined];
  let next: Promise<number> | undefined = read(current);
  let sent = 0;
  let pooled = true;
  let parked = 0;
  try {
    while (sent < total && next !== undefined) {
      const waited = performance.now();
      const n = await next;
      ctx.progress.longestWaitMs = Math.max(ctx.progress.longestWaitMs, performance.now() - waited);
      next = undefined;
      if (connection.aborted) return sent;
      if (n === 0) throw new ContentCorruptError(`store ended the body at ${sent} of ${total} bytes`);
      const chunk = current.subarray(0, Math.min(n, total - sent));
      if (spare !== undefined && sent + chunk.length < total) next = read(spare);
      await ctx.limiter?.take(chunk.length);
      if (connection.aborted) return sent;
      const writing = writer.write(chunk);
      if (pooled && writer.waiting && !(await settlesWithin(writing, PARK_AFTER_MS))) {
        // Reserve the most parking can take (a whole chunk unsent, a whole read-ahead, a small buffer),
        // then give back what it did not.
        const most = 2 * current.length + PARKED_CHUNK_BYTES;
        if (writer.waiting && ctx.park.take(most)) {
          parked = most;
          ctx.park.streams++;
          const unsent = writer.moveToHeap();
          // The read-ahead lands in memory of its own too; then no pooled byte is left in use.
          let ahead: Buffer | undefined;
          if (next !== undefined && spare !== undefined) ahead = Buffer.from(spare.subarray(0, await next));
          // The reader may still be using a buffer it was handed (a digest worker hashing it in place).
          await reader.idle?.();
          ctx.pool.release(buffers);
          pooled = false;
          current = ahead ?? parkedBuffer();
          spare = undefined;
          next = ahead === undefined ? undefined : Promise.resolve(ahead.length);
          parked = unsent + (ahead?.length ?? 0) + PARKED_CHUNK_BYTES;
          ctx.park.give(most - parked);
        }
      }
      if (!(await writing)) return sent;
      sent += chunk.length;
      ctx.progress.sent = sent;
      if (spare !== undefined) [current, spare] = [spare, current];
      else if (!pooled && !(current.buffer instanceof SharedArrayBuffer) && next === undefined)
        current = parkedBuffer();
      if (next === undefined && sent < total) next = read(current);
    }
    return sent;
  } finally {
    // A read still filling a buffer must finish before the buffer goes back to the pool.
    await next?.catch(() => 0);
    if (pooled && running > 0) ctx.pool.discard(buffers);
    else if (pooled) ctx.pool.release(buffers);
    ctx.park.give(parked);
    if (parked > 0) ctx.park.streams--;
  }
}
