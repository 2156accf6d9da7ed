import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreUnavailableError } from '../../../src/main/errors.js';
import { BufferPool } from '../../../src/main/registry/buffer-pool.js';

describe('BufferPool', () => {
  it('makes buffers lazily and never more than its count', async () => {
    const pool = new BufferPool({ bufferSize: 1024, count: 4 });
    assert.equal(pool.allocated, 0);
    const a = await pool.acquire(2, 100);
    const b = await pool.acquire(2, 100);
    assert.equal(pool.allocated, 4);
    assert.ok(a.every((buffer) => buffer.length === 1024));
    pool.release(a);
    const c = await pool.acquire(2, 100);
    assert.equal(pool.allocated, 4);
    assert.ok(
      c.every((buffer) => a.includes(buffer)),
      'released buffers are reused',
    );
    pool.release(b);
    pool.release(c);
  });

  it('makes a waiter wait for a release, all-or-nothing', async () => {
    const pool = new BufferPool({ bufferSize: 16, count: 3 });
    const held = await pool.acquire(2, 100);
    let got: Buffer[] | undefined;
    const waiting = pool.acquire(2, 1000).then((buffers) => {
      got = buffers;
      return buffers;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(got, undefined, 'one free buffer is not enough for a request of two');
    pool.release(held);
    assert.equal((await waiting).length, 2);
  });

  it('times out a waiter with a coded error', async () => {
    const pool = new BufferPool({ bufferSize: 16, count: 1 });
    const held = await pool.acquire(1, 100);
    await assert.rejects(pool.acquire(1, 20), StoreUnavailableError);
    pool.release(held);
    assert.equal((await pool.acquire(1, 20)).length, 1, 'a timed-out waiter does not take a later buffer');
  });

  it('serves waiters in order', async () => {
    const pool = new BufferPool({ bufferSize: 16, count: 1 });
    const held = await pool.acquire(1, 100);
    const order: number[] = [];
    const first = pool.acquire(1, 1000).then((b) => {
      order.push(1);
      pool.release(b);
    });
    const second = pool.acquire(1, 1000).then((b) => {
      order.push(2);
      pool.release(b);
    });
    pool.release(held);
    await Promise.all([first, second]);
    assert.deepEqual(order, [1, 2]);
  });

  it('makes new buffers in place of discarded ones, for whoever waits', async () => {
    const pool = new BufferPool({ bufferSize: 16, count: 2 });
    const held = await pool.acquire(2, 100);
    const waiting = pool.acquire(2, 1000);
    pool.discard(held);
    const lent = await waiting;
    assert.equal(pool.allocated, 2);
    assert.ok(lent.every((buffer) => !held.includes(buffer)));
  });
});
