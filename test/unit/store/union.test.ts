import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { BlobUnknownError } from '../../../src/main/errors.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { MemoryStore } from '../../../src/main/store/memory.js';
import { UnionStore } from '../../../src/main/store/union.js';
import { openContent } from '../../harness/content.js';

const digestOf = (bytes: Buffer): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

describe('UnionStore', () => {
  it('serves and lists what either store holds, the first store first', async () => {
    const [first, second] = [new MemoryStore(), new MemoryStore()];
    const a = Buffer.from('held by the first');
    const b = Buffer.from('held by the second (the cache)');
    await first.ingest(digestOf(a), [a]);
    await second.ingest(digestOf(b), [b]);
    const union = new UnionStore([first, second]);
    assert.equal((await union.stat(digestOf(b)))?.size, b.length);
    const reader = await openContent(union, digestOf(b), { start: 0, end: b.length - 1 });
    const into = Buffer.alloc(b.length);
    assert.equal(await reader.read(into), b.length);
    assert.ok(into.equals(b));
    await reader.close();
    assert.deepEqual([...(await union.listKeys())].sort(), [digestOf(a), digestOf(b)].sort());
    await assert.rejects(
      openContent(union, digestOf(Buffer.from('nowhere')), { start: 0, end: 0 }),
      BlobUnknownError,
    );
  });

  it('tells its listener when either store changes', async () => {
    const [first, second] = [new MemoryStore(), new MemoryStore()];
    const union = new UnionStore([first, second]);
    let changes = 0;
    const unsubscribe = union.onChange(() => changes++);
    const bytes = Buffer.from('new in the cache');
    await second.ingest(digestOf(bytes), [bytes]);
    assert.ok(changes > 0);
    unsubscribe();
    const more = Buffer.from('after unsubscribing');
    const before = changes;
    await first.ingest(digestOf(more), [more]);
    assert.equal(changes, before);
  });
});
