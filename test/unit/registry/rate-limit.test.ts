import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteRateLimiter } from '../../../src/main/registry/rate-limit.js';

describe('ByteRateLimiter', () => {
  it('lets one second of bytes through at once, then holds the rate', async () => {
    const limiter = new ByteRateLimiter(10 << 20);
    const started = performance.now();
    await limiter.take(10 << 20);
    assert.ok(performance.now() - started < 100, 'the first second of bytes is not delayed');
    for (let i = 0; i < 5; i++) await limiter.take(1 << 20);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 450, `5 MiB past the burst at 10 MiB/s took ${elapsed.toFixed(0)} ms`);
  });

  it('shares the rate among concurrent takers', async () => {
    const limiter = new ByteRateLimiter(4 << 20);
    await limiter.take(4 << 20);
    const started = performance.now();
    await Promise.all([limiter.take(1 << 20), limiter.take(1 << 20)]);
    assert.ok(performance.now() - started >= 450, 'two 1 MiB takes at 4 MiB/s wait about half a second');
  });
});
