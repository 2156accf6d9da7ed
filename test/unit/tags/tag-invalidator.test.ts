import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork, MemoryRouter } from '../../../src/main/routing/memory.js';
import { TagBook } from '../../../src/main/tags/tag-book.js';
import { TagInvalidator } from '../../../src/main/tags/tag-invalidator.js';

const NAME = 'docker.io/library/app:v1';

async function cluster(size: number): Promise<Array<{ book: TagBook; invalidator: TagInvalidator }>> {
  const network = new MemoryNetwork();
  const nodes = [];
  for (let i = 0; i < size; i++) {
    const router = new MemoryRouter({ network }, { id: `n${i}`, registry: `http://n${i}` });
    await router.start();
    const book = new TagBook({});
    nodes.push({ book, invalidator: new TagInvalidator({ book, router }) });
  }
  return nodes;
}

describe('TagInvalidator', () => {
  it('reaches every member, which refuses what was confirmed before', async () => {
    const nodes = await cluster(4);
    for (const { book } of nodes) book.confirm(NAME, `sha256:${'1'.repeat(64)}` as never, 1000);
    const result = await nodes[0]?.invalidator.invalidate(NAME, 2000);
    assert.deepEqual(result, { name: NAME, at: 2000, members: 3, told: 3 });
    for (const { book } of nodes) assert.equal(book.get(NAME, 2500), undefined);
  });

  // Regression: a member that heard an invalidation first from another member (which passes it on at
  // once) answered "not taken" to the node it started on, and `shoal invalidate` reported a peer it had
  // reached as missed (exit 3), about once in seven suite runs.
  it('counts a member that already knew the invalidation as told', async () => {
    const nodes = await cluster(3);
    await nodes[2]?.book.invalidate(NAME, 5000, 'member');
    const result = await nodes[0]?.invalidator.invalidate(NAME, 5000);
    assert.equal(result?.told, 2);
  });
});
