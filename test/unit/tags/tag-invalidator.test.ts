import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork, MemoryRouter } from '../../../src/main/routing/memory.js';
import type { PeerMessage } from '../../../src/main/routing/messages.js';
import type { Router } from '../../../src/main/routing/router.js';
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

/** Started memory routers, one per id, on one network. */
async function started(...ids: string[]): Promise<MemoryRouter[]> {
  const network = new MemoryNetwork();
  return Promise.all(
    ids.map(async (id) => {
      const router = new MemoryRouter({ network }, { id, registry: `http://${id}` });
      await router.start();
      return router;
    }),
  );
}

/** `router` with `tell` replaced, recording each notice sent. */
function wrapped(
  router: MemoryRouter,
  tell: (id: string, message: PeerMessage, signal: AbortSignal) => Promise<boolean>,
): Router {
  return {
    members: () => router.members(),
    tell,
    onMessage: (kind, handler) => router.onMessage(kind, handler),
  } as Partial<Router> as Router;
}

describe('TagInvalidator under loss and floods', () => {
  // Regression (issue 26): during a notice flood `shoal invalidate` told 0 of 1 members in 2 of 3 tries,
  // and nothing retried.
  it('sends the operator’s invalidation again until every member has taken it, marked as the operator’s', async () => {
    const routers = await started('n0', 'n1', 'n2');
    const books = routers.map(() => new TagBook({}));
    for (const i of [1, 2]) new TagInvalidator({ book: books[i] as TagBook, router: routers[i] });
    const sent: PeerMessage[] = [];
    let refusals = 2;
    const origin = routers[0] as MemoryRouter;
    const invalidator = new TagInvalidator({
      book: books[0] as TagBook,
      router: wrapped(origin, async (id, message, signal) => {
        sent.push(message);
        if (id === 'n2' && refusals-- > 0) return false;
        return origin.tell(id, message, signal);
      }),
    });
    const result = await invalidator.invalidate(NAME, 7000);
    assert.deepEqual(result, { name: NAME, at: 7000, members: 2, told: 2 });
    assert.equal(sent.length, 4, 'n1 once, n2 three times');
    assert.ok(sent.every((message) => message.kind === 'tag-invalidated' && message.operator === true));
    for (const book of books.slice(1)) assert.equal(await book.invalidate(NAME, 7000, 'member'), false);
  });

  it('gives up on a member that never takes it after the retry time, and says so', async () => {
    const [router] = (await started('n0', 'n1')) as [MemoryRouter];
    let tries = 0;
    const invalidator = new TagInvalidator(
      {
        book: new TagBook({}),
        router: wrapped(router, async () => {
          tries++;
          return false;
        }),
      },
      // 1 s instead of the default 6 s keeps the test quick: what it checks is the giving up and the
      // back-off between tries, which the retry time only cuts short.
      { retryForMs: 1000 },
    );
    const result = await invalidator.invalidate(NAME, 8000);
    assert.deepEqual(result, { name: NAME, at: 8000, members: 1, told: 0 });
    assert.ok(tries >= 2 && tries <= 4, `${tries} tries in 1 s (250 ms, 500 ms, then 1 s apart)`);
  });

  it('passes on at most a burst of fresh invalidations from members, then keeps them to itself', async () => {
    const [router] = (await started('n0', 'n1')) as [MemoryRouter];
    const book = new TagBook({});
    let relayed = 0;
    const invalidator = new TagInvalidator({
      book,
      router: wrapped(router, async () => {
        relayed++;
        return true;
      }),
    });
    for (let i = 0; i < 400; i++) await invalidator.received(`docker.io/library/app:t${i}`, 9000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(relayed >= 50 && relayed <= 52, `${relayed} of 400 fresh invalidations passed on`);
    // Every one was still recorded here.
    assert.equal(await book.invalidate('docker.io/library/app:t399', 9000, 'member'), false);
  });
});
