import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Digest } from '../../../src/main/oci/digest.js';
import { TagBook } from '../../../src/main/tags/tag-book.js';
import { removeDir, shortTempDir } from '../../harness/tmp.js';

const D1 = `sha256:${'1'.repeat(64)}` as Digest;
const D2 = `sha256:${'2'.repeat(64)}` as Digest;
const NAME = '127.0.0.1:5000/app/web:v1';

describe('TagBook', () => {
  let dir: string;
  before(async () => {
    dir = await shortTempDir('shoal-tagbook');
  });
  after(() => removeDir(dir));

  it('keeps the newest confirmation: older news from a peer never wins', () => {
    const book = new TagBook({});
    book.confirm(NAME, D1, 2000);
    book.confirm(NAME, D2, 1000);
    assert.deepEqual(book.get(NAME, 2500), { digest: D1, confirmedAt: 2000 });
    book.confirm(NAME, D2, 3000);
    assert.deepEqual(book.get(NAME, 3500), { digest: D2, confirmedAt: 3000 });
  });

  it('serves nothing confirmed longer ago than the max age', () => {
    const book = new TagBook({}, { maxAgeMs: 1000 });
    book.confirm(NAME, D1, 10_000);
    assert.equal(book.get(NAME, 11_000)?.digest, D1);
    assert.equal(book.get(NAME, 11_001), undefined);
    assert.equal(book.admits(NAME, 10_000, 11_001), false);
    // An answer whose age is unknown (a store without timestamps) has nothing to bound.
    assert.equal(book.admits(NAME, undefined, 11_001), true);
  });

  it('refuses every answer confirmed before an invalidation, and takes newer ones again', async () => {
    const book = new TagBook({});
    book.confirm(NAME, D1, 1000);
    assert.equal(await book.invalidate(NAME, 2000), true);
    assert.equal(await book.invalidate(NAME, 1500), false, 'an older invalidation is not news');
    assert.equal(book.get(NAME, 2500), undefined);
    assert.equal(book.admits(NAME, 1999), false);
    assert.equal(book.admits(NAME, undefined), false, 'an answer of unknown age may predate it');
    book.confirm(NAME, D1, 1800);
    assert.equal(book.get(NAME, 2500), undefined, 'a stale peer cannot bring the mapping back');
    book.confirm(NAME, D2, 2100);
    assert.equal(book.get(NAME, 2500)?.digest, D2);
    assert.equal(book.admits(NAME, undefined), true, 'a confirmation after it supersedes it');
  });

  it('persists mappings and invalidations across a restart', async () => {
    const path = join(dir, 'tags.json');
    const book = new TagBook({}, { path, flushDelayMs: 10 });
    await book.start();
    book.confirm(NAME, D1, 1000);
    book.confirm('docker.io/library/nginx:1.27', D2, 1200);
    await book.invalidate('docker.io/library/nginx:1.27', 1300);
    await book.stop();
    const again = new TagBook({}, { path });
    await again.start();
    assert.deepEqual(again.get(NAME, 2000), { digest: D1, confirmedAt: 1000 });
    assert.equal(again.get('docker.io/library/nginx:1.27', 2000), undefined);
    assert.equal(again.admits('docker.io/library/nginx:1.27', 1250), false);
  });

  it('writes an invalidation to disk before it resolves', async () => {
    const path = join(dir, 'invalidated.json');
    const book = new TagBook({}, { path, flushDelayMs: 60_000 });
    await book.start();
    book.confirm(NAME, D1, 1000);
    await book.invalidate(NAME, 5000);
    const file = JSON.parse(await readFile(path, 'utf8')) as { invalidated: Record<string, number> };
    assert.equal(file.invalidated[NAME], 5000);
    await book.stop();
  });

  it('starts empty from a damaged file instead of failing', async () => {
    const path = join(dir, 'damaged.json');
    await writeFile(path, '{"version":1,"tags":{"x":');
    const book = new TagBook({}, { path });
    await book.start();
    assert.deepEqual([...book.entries()], []);
    book.confirm(NAME, D1, 1000);
    await book.stop();
    const again = new TagBook({}, { path });
    await again.start();
    assert.equal(again.get(NAME, 1000)?.digest, D1);
  });

  it('keeps at most maxTags mappings, dropping the one heard of longest ago', () => {
    const book = new TagBook({}, { maxTags: 2 });
    book.confirm('r/a:1', D1, 1);
    book.confirm('r/a:2', D1, 2);
    book.confirm('r/a:3', D1, 3);
    assert.deepEqual(
      [...book.entries()].map(([name]) => name),
      ['r/a:2', 'r/a:3'],
    );
  });

  // Regression (security): 12,000 invalidations of new names cost 2.0 GB of writes (the whole book fsynced
  // each time) and pushed the operator's own invalidation out of the bounded list.
  it('writes a flood of members’ invalidations together, and never evicts the operator’s', async () => {
    const path = join(dir, 'flood.json');
    const writes: number[] = [];
    const book = new TagBook(
      {
        write: async (to, text) => {
          writes.push(text.length);
          await writeFile(to, text);
        },
      },
      { path, maxInvalidations: 100 },
    );
    await book.start();
    const operatorName = 'docker.io/library/app:pinned';
    assert.equal(await book.invalidate(operatorName, 1000, 'operator'), true);
    assert.equal(writes.length, 1, 'the operator’s invalidation is on disk before it resolves');
    for (let i = 0; i < 12_000; i++) await book.invalidate(`docker.io/flood/n${i}:v1`, 2000 + i, 'member');
    assert.equal(writes.length, 1, 'members’ invalidations wait for the next flush');
    await book.stop();
    assert.equal(writes.length, 2, 'and 12,000 of them are written once');
    const file = JSON.parse(await readFile(path, 'utf8')) as {
      invalidated: Record<string, number>;
      operator: string[];
    };
    assert.equal(file.invalidated[operatorName], 1000, 'the operator’s invalidation survived the flood');
    assert.deepEqual(file.operator, [operatorName]);
    assert.equal(Object.keys(file.invalidated).length, 101, 'members’ are bounded; the operator’s apart');
    assert.ok((writes[1] ?? 0) < 10_000, `the book stays small: ${writes[1]} bytes`);
    // After a restart the operator's entry is still the operator's.
    const again = new TagBook({}, { path, maxInvalidations: 100 });
    await again.start();
    for (let i = 0; i < 500; i++) await again.invalidate(`docker.io/more/n${i}:v1`, 50_000 + i, 'member');
    assert.equal(again.admits(operatorName, 999), false);
  });

  it('drops a stored invalidation dated far in the future: no confirmation could ever lift it', async () => {
    const path = join(dir, 'future.json');
    const far = Date.now() + 24 * 3600_000;
    await writeFile(path, JSON.stringify({ version: 1, tags: {}, invalidated: { [NAME]: far } }));
    const book = new TagBook({}, { path });
    await book.start();
    book.confirm(NAME, D1, Date.now());
    assert.equal(book.get(NAME)?.digest, D1);
  });
});
