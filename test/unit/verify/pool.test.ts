import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { StoreUnavailableError } from '../../../src/main/errors.js';
import { Metrics } from '../../../src/main/metrics/metrics.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import type { VerifyPool } from '../../../src/main/verify/pool.js';
import { CRASH_SIZE } from '../../harness/crashing-worker.js';
import { startVerifier } from '../../harness/verifier.js';

const digestOf = (bytes: Uint8Array): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

function shared(bytes: Buffer): Buffer {
  const out = Buffer.from(new SharedArrayBuffer(bytes.length));
  bytes.copy(out);
  return out;
}

async function waitForMetric(metrics: Metrics, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !pattern.test(await metrics.render()); i++) await sleep(20);
  assert.match(await metrics.render(), pattern);
}

/** Streams `bytes` through a session in chunks of `chunk` bytes, waiting for each to be hashed. */
async function streamed(pool: VerifyPool, bytes: Buffer, expected: Digest, size: number, chunk = 1000) {
  const session = pool.session(expected, size);
  for (let at = 0; at < bytes.length; at += chunk) {
    await session.hashed(session.update(bytes.subarray(at, Math.min(bytes.length, at + chunk))));
  }
  return session.finish();
}

describe('digest worker protocol', () => {
  const blob = shared(Buffer.from('a layer of some size, '.repeat(5000)));
  const good = digestOf(blob);
  let pool: VerifyPool;
  let dir: string;
  const metrics = new Metrics();

  before(async () => {
    pool = await startVerifier({ threads: 2 }, metrics);
    dir = await mkdtemp(join(tmpdir(), 'shoal-verify-'));
  });
  after(async () => {
    await pool.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts every worker warm', () => {
    assert.equal(pool.liveThreads, 2);
    assert.equal(pool.warmThreads, 2, 'each worker ran the warm-up task');
  });

  it('accepts a good digest: stream (shared and copied chunks) and file', async () => {
    assert.deepEqual(await streamed(pool, blob, good, blob.length), {
      ok: true,
      code: 'OK',
      digest: good,
      bytes: blob.length,
    });
    const copied = Buffer.from(blob); // not shared memory: the session copies it
    assert.equal((await streamed(pool, copied, good, blob.length)).code, 'OK');
    const path = join(dir, 'good');
    await writeFile(path, blob);
    assert.equal((await pool.verifyFile(path, good, blob.length)).code, 'OK');
  });

  it('rejects a bad digest: one flipped byte', async () => {
    const bad = Buffer.from(blob);
    const middle = bad.length >> 1;
    bad.writeUInt8(bad.readUInt8(middle) ^ 1, middle);
    const verdict = await streamed(pool, shared(bad), good, blob.length);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.code, 'DIGEST_MISMATCH');
    assert.equal(verdict.digest, digestOf(bad));
    const path = join(dir, 'bad');
    await writeFile(path, bad);
    assert.equal((await pool.verifyFile(path, good, blob.length)).code, 'DIGEST_MISMATCH');
  });

  it('rejects truncated input, streamed or on disk, and a file that is gone', async () => {
    const short = blob.subarray(0, blob.length - 1);
    const verdict = await streamed(pool, short, good, blob.length);
    assert.equal(verdict.code, 'SIZE_MISMATCH');
    assert.equal(verdict.bytes, blob.length - 1);
    const path = join(dir, 'short');
    await writeFile(path, short);
    assert.equal((await pool.verifyFile(path, good, blob.length)).code, 'SIZE_MISMATCH');
    assert.equal((await pool.verifyFile(join(dir, 'absent'), good, blob.length)).code, 'READ_FAILED');
  });

  it('throttles a file check to the rate asked for', async () => {
    const path = join(dir, 'throttled');
    await writeFile(path, Buffer.alloc(3 << 20));
    const started = performance.now();
    await pool.verifyFile(path, digestOf(Buffer.alloc(3 << 20)), 3 << 20, { bytesPerSecond: 10 << 20 });
    assert.ok(performance.now() - started >= 250, '3 MiB at 10 MiB/s takes about 300 ms');
  });

  it('ends the worker task when the sender gives up mid-stream (a client that left)', async () => {
    const session = pool.session(good, blob.length);
    await session.hashed(session.update(blob.subarray(0, 1000)));
    session.abort();
    // The task ends with ABORTED and is counted; nothing keeps running in the worker.
    await waitForMetric(metrics, /shoal_verify_total\{kind="stream",result="ABORTED"\} 1/);
    assert.throws(() => session.update(blob.subarray(1000, 2000)), StoreUnavailableError);
  });

  it('counts every verdict in the metrics', async () => {
    const text = await metrics.render();
    assert.match(text, /shoal_verify_total\{kind="stream",result="DIGEST_MISMATCH"\} [1-9]/);
    assert.match(text, /shoal_verify_total\{kind="file",result="OK"\} [1-9]/);
  });
});

describe('digest worker crash', () => {
  let pool: VerifyPool;
  before(async () => {
    const filename = fileURLToPath(new URL('../../harness/crashing-worker.js', import.meta.url));
    pool = await startVerifier({ threads: 1, filename, timeoutMs: 5000 });
  });
  after(() => pool.stop());

  it('fails the request cleanly instead of hanging, and the pool recovers', async () => {
    const bytes = shared(Buffer.alloc(CRASH_SIZE, 1));
    const session = pool.session(digestOf(bytes), CRASH_SIZE);
    const started = performance.now();
    await assert.rejects(session.hashed(session.update(bytes.subarray(0, 1000))), StoreUnavailableError);
    await assert.rejects(session.finish(), StoreUnavailableError);
    assert.ok(performance.now() - started < 4000, 'failed on the crash, not on the timeout');
    // The next check runs on a fresh worker.
    const next = shared(Buffer.from('after the crash'));
    assert.equal((await streamed(pool, next, digestOf(next), next.length)).code, 'OK');
    assert.equal(pool.liveThreads, 1);
  });
});
