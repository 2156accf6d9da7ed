import type { HttpResponse } from 'uWebSockets.js';
import { ContentCorruptError, StoreUnavailableError } from '../errors.js';
import type { BlobReader } from '../store/store.js';
import { withTimeout } from '../util/timeout.js';
import type { ByteRateLimiter } from './rate-limit.js';

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
class ChunkWriter {
  readonly #res: HttpResponse;
  readonly #total: number;
  readonly #connection: Connection;
  #pending: { chunk: Buffer; start: number; resolve: (written: boolean) => void } | undefined;
  #registered = false;

  constructor(res: HttpResponse, total: number, connection: Connection) {
    this.#res = res;
    this.#total = total;
    this.#connection = connection;
  }

  /** Resolves true once uWS has taken every byte (the buffer may be reused), false if the client left. */
  write(chunk: Buffer): Promise<boolean> {
    const start = this.#res.getWriteOffset();
    let result: [boolean, boolean] = [false, false];
    this.#res.cork(() => {
      result = this.#res.tryEnd(chunk, this.#total);
    });
    if (result[0] || result[1]) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.#pending = { chunk, start, resolve };
      this.#connection.onAbort = () => resolve(false);
      if (!this.#registered) {
        this.#registered = true;
        this.#res.onWritable((offset) => this.#resume(offset));
      }
    });
  }

  #resume(offset: number): boolean {
    const pending = this.#pending;
    if (pending === undefined) return true;
    const [ok, done] = this.#res.tryEnd(pending.chunk.subarray(offset - pending.start), this.#total);
    if (ok || done) {
      this.#pending = undefined;
      this.#connection.onAbort = undefined;
      pending.resolve(true);
    }
    return ok;
  }
}

/**
 * Streams `total` bytes from a reader to a response whose status and headers are already written. Two
 * pooled buffers alternate: the store fills one while the socket drains the other, and nothing is read
 * ahead of that, so a slow client slows the disk read instead of growing memory.
 * Throws when the body cannot be finished; the caller must then cut the connection.
 */
export async function streamBody(
  res: HttpResponse,
  reader: BlobReader,
  buffers: Buffer[],
  total: number,
  connection: Connection,
  timeoutMs: number,
  limiter?: ByteRateLimiter,
): Promise<void> {
  const read = (into: Buffer): Promise<number> => {
    const reading = withTimeout(
      reader.read(into),
      timeoutMs,
      'content store read',
      (message) => new StoreUnavailableError(message),
    );
    // A read-ahead may fail (a digest mismatch) while the chunk before it still waits to be written, long
    // before anyone awaits it; without a handler that is an unhandled rejection, which ends the process.
    reading.catch(() => undefined);
    return reading;
  };
  const writer = new ChunkWriter(res, total, connection);
  let [current, spare] = buffers as [Buffer, Buffer | undefined];
  let next: Promise<number> | undefined = read(current);
  let sent = 0;
  try {
    while (sent < total && next !== undefined) {
      const n = await next;
      next = undefined;
      if (connection.aborted) return;
      if (n === 0) throw new ContentCorruptError(`store ended the body at ${sent} of ${total} bytes`);
      const chunk = current.subarray(0, Math.min(n, total - sent));
      if (spare !== undefined && sent + chunk.length < total) next = read(spare);
      await limiter?.take(chunk.length);
      if (connection.aborted || !(await writer.write(chunk))) return;
      sent += chunk.length;
      if (spare !== undefined) [current, spare] = [spare, current];
      if (next === undefined && sent < total) next = read(current);
    }
  } finally {
    // A read still filling a buffer must finish before the buffer goes back to the pool.
    await next?.catch(() => 0);
  }
}
