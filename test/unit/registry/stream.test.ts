import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../../../src/main/errors.js';
import { BufferPool } from '../../../src/main/registry/buffer-pool.js';
import { ParkBudget } from '../../../src/main/registry/park.js';
import { StallWatch } from '../../../src/main/registry/stall.js';
import { streamBody, streamEnding } from '../../../src/main/registry/stream.js';
import type { HttpResponse } from '../../../src/main/registry/uws.js';
import type { BlobReader } from '../../../src/main/store/store.js';

/** The parts of a uWS response a stream uses; it takes no byte until `accepting` is set. */
class SlowResponse {
  accepting = false;
  offset = 0;
  readonly body: Buffer[] = [];
  #writable: ((offset: number) => boolean) | undefined;

  cork(work: () => void): this {
    work();
    return this;
  }

  getWriteOffset(): number {
    return this.offset;
  }

  tryEnd(chunk: ArrayBuffer | Uint8Array, total: number): [boolean, boolean] {
    if (!this.accepting) return [false, false];
    const bytes = Buffer.from(chunk as Uint8Array);
    this.body.push(Buffer.from(bytes));
    this.offset += bytes.length;
    return [true, this.offset >= total];
  }

  onWritable(handler: (offset: number) => boolean): this {
    this.#writable = handler;
    return this;
  }

  /** The client starts taking bytes again. */
  resume(): void {
    this.accepting = true;
    this.#writable?.(this.offset);
  }

  close(): this {
    return this;
  }
}

describe('streamBody', () => {
  it('parks a slow client only once its reader is done with the pooled buffers', async () => {
    const total = 300_000;
    const expected = Buffer.alloc(total);
    for (let i = 0; i < total; i++) expected[i] = (i * 31 + 7) & 255;
    const pool = new BufferPool({ bufferSize: 64 << 10, count: 2 });
    let idle = false;
    let releasedBusy = false;
    const release = pool.release.bind(pool);
    pool.release = (buffers) => {
      releasedBusy ||= !idle;
      release(buffers);
    };
    let position = 0;
    // A reader that goes on using the last buffer it filled for a while after its read resolved, as a
    // digest worker hashing it in place does.
    const reader: BlobReader = {
      async read(into) {
        idle = false;
        const n = Math.min(into.length, total - position);
        expected.copy(into, 0, position, position + n);
        position += n;
        return n;
      },
      async idle() {
        await sleep(30);
        idle = true;
      },
      async close() {},
    };
    const res = new SlowResponse();
    const stalls = new StallWatch(60_000);
    const sending = streamBody(
      res as unknown as HttpResponse,
      reader,
      await pool.acquire(2, 1000),
      total,
      { aborted: false, onAbort: undefined },
      {
        pool,
        timeoutMs: 5000,
        stalls,
        park: new ParkBudget(16 << 20),
        progress: { sent: 0, headed: false, longestWaitMs: 0 },
      },
      () => undefined,
    );
    // The stream parks after its write has waited 50 ms, and gives its buffers back: this waits for that.
    assert.equal((await pool.acquire(2, 5000)).length, 2);
    assert.equal(pool.allocated, 2);
    res.resume();
    assert.equal(await sending, total);
    assert.ok(Buffer.concat(res.body).equals(expected), 'the client got every byte in order');
    assert.equal(releasedBusy, false, 'no pooled buffer went back while the reader still used it');
  });

  it('never gives the pool a buffer that a timed-out store read may still write into', async () => {
    const pool = new BufferPool({ bufferSize: 64 << 10, count: 2 });
    const borrowed = await pool.acquire(2, 1000);
    let finishLate: (() => void) | undefined;
    // A store read that hangs past its time bound, then fills its buffer after all.
    const reader: BlobReader = {
      read: (into) =>
        new Promise((resolve) => {
          finishLate = () => {
            into.fill(0xee);
            resolve(into.length);
          };
        }),
      async close() {},
    };
    const res = new SlowResponse();
    res.accepting = true;
    await assert.rejects(
      streamBody(
        res as unknown as HttpResponse,
        reader,
        borrowed,
        100_000,
        { aborted: false, onAbort: undefined },
        {
          pool,
          // The store read bound, 30 s by default, made short so the test does not wait it out.
          timeoutMs: 50,
          stalls: new StallWatch(60_000),
          park: new ParkBudget(16 << 20),
          progress: { sent: 0, headed: false, longestWaitMs: 0 },
        },
        () => undefined,
      ),
      StoreUnavailableError,
    );
    const lent = await pool.acquire(2, 1000);
    assert.ok(
      lent.every((buffer) => !borrowed.includes(buffer)),
      'the pool lent a buffer the late read writes into',
    );
    finishLate?.();
    assert.ok(lent.every((buffer) => !buffer.includes(0xee)));
  });

  it('keeps the longest wait for the next bytes from the reader: the stall the request counts', async () => {
    const pool = new BufferPool({ bufferSize: 64 << 10, count: 2 });
    // Three chunks; the reader keeps the client waiting 40 ms for the second and 250 ms for the third.
    const delays = [0, 40, 250];
    let served = 0;
    const reader: BlobReader = {
      async read(into) {
        const delay = delays[served] ?? 0;
        if (delay > 0) await sleep(delay);
        served++;
        into.fill(7, 0, 1000);
        return 1000;
      },
      async close() {},
    };
    const res = new SlowResponse();
    res.accepting = true;
    const progress = { sent: 0, headed: false, longestWaitMs: 0 };
    const sent = await streamBody(
      res as unknown as HttpResponse,
      reader,
      await pool.acquire(1, 1000),
      3000,
      { aborted: false, onAbort: undefined },
      { pool, timeoutMs: 5000, stalls: new StallWatch(60_000), park: new ParkBudget(16 << 20), progress },
      () => undefined,
    );
    assert.equal(sent, 3000);
    assert.deepEqual(streamEnding(200, progress, true), {
      status: 200,
      bytes: 3000,
      cut: false,
      longestWaitMs: progress.longestWaitMs,
    });
    // Timers never fire early, and 2 busy cores may add a little: only the lower bound is exact.
    assert.ok(progress.longestWaitMs >= 249, `longest wait ${progress.longestWaitMs} ms`);
    assert.ok(progress.longestWaitMs < 1000, `longest wait ${progress.longestWaitMs} ms`);
  });
});
