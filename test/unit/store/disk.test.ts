import assert from 'node:assert/strict';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { DiskFullError } from '../../../src/main/errors.js';
import {
  CacheRoom,
  FREE_SHARE_KEPT,
  type FullReason,
  resolveByteSize,
} from '../../../src/main/store/disk.js';

/** Bytes a download may take on the disk of `dir` now, past which the share kept free would be used. */
async function spare(dir: string): Promise<number> {
  const info = await statfs(dir);
  return info.bavail * info.bsize - info.blocks * info.bsize * FREE_SHARE_KEPT;
}

describe('CacheRoom: room for downloads into the cache', () => {
  const dir = tmpdir();

  it('refuses content larger than the bound, and content that would eat the share kept free', async () => {
    const full: FullReason[] = [];
    const bounded = new CacheRoom(1000, dir, (reason) => full.push(reason));
    await assert.rejects(bounded.take(1001), DiskFullError);
    const unbounded = new CacheRoom(0, dir, (reason) => full.push(reason));
    await assert.rejects(unbounded.take(Math.ceil(await spare(dir)) + (1 << 20)), DiskFullError);
    assert.deepEqual(full, ['bound', 'disk']);
  });

  it('counts room promised to downloads under way until they end, and counts a write that found the disk full', async () => {
    const full: FullReason[] = [];
    const room = new CacheRoom(0, dir, (reason) => full.push(reason));
    // Most of what is spare, so a second promise of the same size cannot fit beside it.
    const size = Math.floor((await spare(dir)) * 0.6);
    const first = await room.take(size);
    assert.equal(room.reserved, size);
    await assert.rejects(room.take(size), DiskFullError);
    let fail: (err: Error) => void = () => undefined;
    first.until(new Promise((_, reject) => (fail = reject)));
    fail(new DiskFullError('the disk is full while writing a spool'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(room.reserved, 0);
    assert.deepEqual(full, ['disk', 'write']);
    (await room.take(size)).until(Promise.resolve());
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(room.reserved, 0);
  });

  it('resolves a share of the disk to bytes, and keeps 0 as no bound', async () => {
    const info = await statfs(dir);
    assert.equal(await resolveByteSize({ share: 0.1 }, dir), Math.floor(info.blocks * info.bsize * 0.1));
    assert.equal(await resolveByteSize({ bytes: 0 }, dir), 0);
    assert.equal(await resolveByteSize({ bytes: 123 }, dir), 123);
  });
});
