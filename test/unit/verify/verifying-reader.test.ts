import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ContentCorruptError } from '../../../src/main/errors.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import type { ByteRange } from '../../../src/main/oci/range.js';
import type { BlobReader } from '../../../src/main/store/store.js';
import type { VerifyPool } from '../../../src/main/verify/pool.js';
import type { Verdict } from '../../../src/main/verify/verifier.js';
import { VerifyingReader } from '../../../src/main/verify/verifying-reader.js';
import { startVerifier } from '../../harness/verifier.js';

const CHUNK = 64 << 10;
const digestOf = (bytes: Uint8Array): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

/** A source handing out `bytes` in pieces no larger than `piece`, as a peer's socket does. */
function source(bytes: Buffer, piece = 50_000): BlobReader & { closed: boolean } {
  let at = 0;
  return {
    closed: false,
    async read(into: Buffer): Promise<number> {
      const n = bytes.copy(into, 0, at, Math.min(bytes.length, at + Math.min(piece, into.length)));
      at += n;
      return n;
    },
    async close() {
      this.closed = true;
    },
  };
}

/**
 * Drives the reader the way the server does: two shared buffers alternating, each chunk "sent" (copied
 * out) before its buffer is handed back. Returns what was sent and whether the body completed.
 */
async function drain(reader: BlobReader, length: number): Promise<{ sent: Buffer; error?: unknown }> {
  const buffers = [0, 1].map(() => Buffer.from(new SharedArrayBuffer(CHUNK)));
  const out: Buffer[] = [];
  let sent = 0;
  try {
    for (let i = 0; sent < length; i++) {
      const buffer = buffers[i % 2] as Buffer;
      const n = await reader.read(buffer.subarray(0, Math.min(CHUNK, length - sent)));
      if (n === 0) break;
      out.push(Buffer.from(buffer.subarray(0, n)));
      sent += n;
    }
    return { sent: Buffer.concat(out) };
  } catch (error) {
    return { sent: Buffer.concat(out), error };
  } finally {
    await reader.close();
  }
}

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt8(copy.readUInt8(at) ^ 0xff, at);
  return copy;
}

describe('VerifyingReader', () => {
  const blob = Buffer.alloc(1_000_003);
  for (let i = 0; i < blob.length; i++) blob.writeUInt8((i * 7 + (i >> 9)) & 0xff, i);
  const digest = digestOf(blob);
  const whole: ByteRange = { start: 0, end: blob.length - 1 };
  let pool: VerifyPool;
  before(async () => {
    pool = await startVerifier();
  });
  after(() => pool.stop());

  const reader = (bytes: Buffer, range: ByteRange, corrupt: Verdict[] = []) =>
    new VerifyingReader(source(bytes), pool.session(digest, blob.length), {
      range,
      size: blob.length,
      onCorrupt: (verdict) => corrupt.push(verdict),
      scratch: () => Buffer.from(new SharedArrayBuffer(CHUNK)),
    });

  it('passes an honest body through unchanged', async () => {
    const result = await drain(reader(blob, whole), blob.length);
    assert.equal(result.error, undefined);
    assert.ok(result.sent.equals(blob));
  });

  for (const [where, at] of [
    ['in the middle', blob.length >> 1],
    ['in the last byte', blob.length - 1],
    ['in the first byte', 0],
  ] as const) {
    it(`never completes a body with a byte flipped ${where}`, async () => {
      const corrupt: Verdict[] = [];
      const result = await drain(reader(flipped(blob, at), whole, corrupt), blob.length);
      assert.ok(result.error instanceof ContentCorruptError, String(result.error));
      assert.ok(result.sent.length < blob.length, 'the last chunk was held back');
      assert.equal(corrupt.length, 1);
      assert.equal(corrupt[0]?.code, 'DIGEST_MISMATCH');
    });
  }

  it('serves a range from the whole body, checked', async () => {
    const range = { start: 300_001, end: 700_000 };
    const result = await drain(reader(blob, range), range.end - range.start + 1);
    assert.equal(result.error, undefined);
    assert.ok(result.sent.equals(blob.subarray(range.start, range.end + 1)));
  });

  it('never completes a range when a byte outside it is bad', async () => {
    const range = { start: 100, end: 199 };
    for (const at of [50, 900_000]) {
      const result = await drain(reader(flipped(blob, at), range), 100);
      assert.ok(result.error instanceof ContentCorruptError, `flip at ${at}`);
      assert.equal(result.sent.length, 0, 'a range in one chunk is held back whole');
    }
  });

  it('fails a body that ends early', async () => {
    const result = await drain(reader(blob.subarray(0, 500_000), whole), blob.length);
    assert.ok(result.error instanceof ContentCorruptError);
  });

  it('does not let the source refill a buffer the worker may still be reading', async () => {
    // One buffer only, reused for every chunk: a refill before the hash would corrupt the digest.
    const one = Buffer.from(new SharedArrayBuffer(CHUNK));
    const verifying = reader(blob, whole);
    let total = 0;
    for (;;) {
      const n = await verifying.read(one);
      if (n === 0) break;
      total += n;
    }
    assert.equal(total, blob.length);
  });
});
