import { StoreUnavailableError } from '../errors.js';

export interface BufferPoolInit {
  /** Bytes per buffer; default 1 MiB. */
  bufferSize?: number;
  /** Most buffers that ever exist; default 64. */
  count?: number;
}

interface Waiter {
  count: number;
  resolve: (buffers: Buffer[]) => void;
  timer: NodeJS.Timeout;
}

/**
 * A fixed pool of large buffers that blob streams borrow. Buffers are made on first use and never more
 * than `count` of them, so concurrent downloads cannot grow memory: a stream that finds the pool empty
 * waits (bounded) for another to finish.
 */
export class BufferPool {
  readonly bufferSize: number;
  readonly #count: number;
  readonly #free: Buffer[] = [];
  #made = 0;
  readonly #waiters: Waiter[] = [];

  constructor(init: BufferPoolInit = {}) {
    this.bufferSize = init.bufferSize ?? 1 << 20;
    this.#count = init.count ?? 64;
  }

  /** Buffers in existence (lent out or free). */
  get allocated(): number {
    return this.#made;
  }

  /** Borrows `count` buffers at once (all or none, so two streams never deadlock holding one each). */
  acquire(count: number, timeoutMs: number): Promise<Buffer[]> {
    if (count > this.#count) throw new RangeError(`pool holds ${this.#count} buffers, ${count} asked`);
    const now = this.#take(count);
    if (now !== undefined && this.#waiters.length === 0) return Promise.resolve(now);
    if (now !== undefined) this.#free.push(...now);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new StoreUnavailableError(`no stream buffer free within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /**
   * Gives up borrowed buffers for good, for a stream whose store read outlived its timeout and may still
   * write into them: new ones are made in their place.
   */
  discard(buffers: readonly Buffer[]): void {
    this.#made -= buffers.length;
    this.release([]);
  }

  release(buffers: readonly Buffer[]): void {
    this.#free.push(...buffers);
    while (this.#waiters.length > 0) {
      const first = this.#waiters[0] as Waiter;
      const taken = this.#take(first.count);
      if (taken === undefined) return;
      this.#waiters.shift();
      clearTimeout(first.timer);
      first.resolve(taken);
    }
  }

  #take(count: number): Buffer[] | undefined {
    if (this.#free.length + (this.#count - this.#made) < count) return undefined;
    const taken = this.#free.splice(0, count);
    while (taken.length < count) {
      // Shared memory of its own: digest workers hash the chunk in place while it is being sent.
      taken.push(Buffer.from(new SharedArrayBuffer(this.bufferSize)));
      this.#made++;
    }
    return taken;
  }
}
