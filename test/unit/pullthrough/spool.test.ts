import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContentCorruptError, StoreUnavailableError } from '../../../src/main/errors.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import type { ByteRange } from '../../../src/main/oci/range.js';
import { Spool } from '../../../src/main/pullthrough/spool.js';
import type { VerifyPool } from '../../../src/main/verify/pool.js';
import { startVerifier } from '../../harness/verifier.js';

const digestOf = (bytes: Uint8Array): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

/** Reads a range through a spool reader the way the server does; returns what arrived and any error. */
async function follow(spool: Spool, range: ByteRange): Promise<{ bytes: Buffer; error?: unknown }> {
  const reader = await spool.reader(range);
  const parts: Buffer[] = [];
  const buffer = Buffer.alloc(64 << 10);
  try {
    for (;;) {
      const n = await reader.read(buffer);
      if (n === 0) return { bytes: Buffer.concat(parts) };
      parts.push(Buffer.from(buffer.subarray(0, n)));
    }
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  } finally {
    await reader.close();
  }
}

/** Feeds `bytes` into a stream in pieces, pausing between them, as a network download arrives. */
async function feed(source: PassThrough, bytes: Buffer, piece = 100_000, pauseMs = 2): Promise<void> {
  for (let at = 0; at < bytes.length; at += piece) {
    source.write(bytes.subarray(at, at + piece));
    await sleep(pauseMs);
  }
  source.end();
}

describe('Spool', () => {
  const blob = Buffer.alloc(1_500_001);
  for (let i = 0; i < blob.length; i++) blob.writeUInt8((i * 31 + (i >> 11)) & 0xff, i);
  const digest = digestOf(blob);
  const whole = { start: 0, end: blob.length - 1 };
  let verifier: VerifyPool;
  let dir: string;
  let n = 0;
  before(async () => {
    verifier = await startVerifier();
    dir = await mkdtemp(join(tmpdir(), 'shoal-spool-'));
  });
  after(async () => {
    await verifier.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function spoolOf(source: PassThrough, bytes = blob, stallMs = 5000) {
    const path = join(dir, `spool-${n++}`);
    const committed: string[] = [];
    const spool = new Spool(
      { verifier },
      { digest, size: bytes === blob ? blob.length : bytes.length, path, source },
      async (from) => {
        committed.push(from);
        await rename(from, `${from}.committed`);
        return `${from}.committed`;
      },
      { stallMs },
    );
    return { spool, path, committed };
  }

  it('lets readers that start early, midway and late all read the one download', async () => {
    const source = new PassThrough();
    const { spool, path, committed } = spoolOf(source);
    const early = follow(spool, whole);
    const feeding = feed(source, blob);
    await sleep(20);
    const midway = follow(spool, whole);
    await feeding;
    const late = follow(spool, { start: 1_000_000, end: blob.length - 1 });
    for (const result of await Promise.all([early, midway])) {
      assert.equal(result.error, undefined);
      assert.ok(result.bytes.equals(blob));
    }
    assert.ok((await late).bytes.equals(blob.subarray(1_000_000)));
    assert.equal((await spool.done).ok, true);
    assert.deepEqual(committed, [path]);
    assert.ok((await readFile(`${path}.committed`)).equals(blob), 'committed once, whole');
    // A reader that joins after the commit reads the committed file.
    assert.ok((await follow(spool, whole)).bytes.equals(blob));
  });

  it('never completes a reader’s body when the download fails its digest, and leaves no file', async () => {
    const source = new PassThrough();
    const bad = Buffer.from(blob);
    bad.writeUInt8(bad.readUInt8(700_000) ^ 1, 700_000);
    const { spool, path, committed } = spoolOf(source);
    const reading = follow(spool, whole);
    const ranged = follow(spool, { start: 0, end: 99 }); // the flip lies outside this range
    await feed(source, bad);
    for (const result of [await reading, await ranged]) {
      assert.ok(result.error instanceof ContentCorruptError, String(result.error));
    }
    assert.ok((await reading).bytes.length < blob.length);
    assert.equal((await ranged).bytes.length, 0, 'a range in one read is held back whole');
    await assert.rejects(spool.done, ContentCorruptError);
    assert.deepEqual(committed, []);
    await assert.rejects(access(path), 'the temporary file is gone');
  });

  it('fails readers and the download when the source stalls', async () => {
    const source = new PassThrough();
    const { spool, path } = spoolOf(source, blob, 300);
    source.write(blob.subarray(0, 1000));
    const result = await follow(spool, whole);
    assert.ok(result.error instanceof StoreUnavailableError, String(result.error));
    assert.equal(result.bytes.length, 1000);
    await assert.rejects(spool.done, StoreUnavailableError);
    await assert.rejects(access(path));
  });

  it('fails a source that sends more than the size it announced', async () => {
    const source = new PassThrough();
    const { spool } = spoolOf(source);
    await feed(source, Buffer.concat([blob, Buffer.from('extra')]));
    await assert.rejects(spool.done, ContentCorruptError);
  });
});
