import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LookupCache } from '../../../src/main/peer/lookup-cache.js';
import type { Provider, Router } from '../../../src/main/routing/router.js';

/** A router whose lookups are counted and yield its providers slowly; `now` is what it knows of each now. */
function countingRouter(
  providers: Provider[],
): Pick<Router, 'lookup' | 'current'> & { calls: number; now: Map<string, Provider | undefined> } {
  const router = {
    calls: 0,
    now: new Map<string, Provider | undefined>(),
    current: (provider: Provider) => (router.now.has(provider.id) ? router.now.get(provider.id) : provider),
    start: async () => {},
    stop: async () => {},
    ready: () => true,
    advertise: async () => {},
    withdraw: async () => {},
    selfId: 'self',
    members: () => providers.map((provider) => provider.id),
    provider: async (id: string) => providers.find((provider) => provider.id === id),
    async *lookup(_key: string, signal: AbortSignal): AsyncIterable<Provider> {
      router.calls++;
      for (const provider of providers) {
        await sleep(20);
        if (signal.aborted) return;
        yield provider;
      }
    },
  };
  return router;
}

async function collect(source: AsyncIterable<Provider>): Promise<string[]> {
  const ids: string[] = [];
  for await (const provider of source) ids.push(provider.id);
  return ids;
}

const p = (id: string): Provider => ({ id, registry: `http://${id}` });

describe('LookupCache', () => {
  it('warms a key ahead: the asker that follows joins that lookup, and a fresh key is not looked up again', async () => {
    const router = countingRouter([{ id: 'a', registry: 'http://a' }]);
    // Refreshed after 60 s instead of 5 s, so "fresh" cannot lapse while the test runs on a busy machine.
    const cache = new LookupCache({ router }, { refreshMs: 60_000 });
    cache.warm('k');
    cache.warm('k');
    assert.equal(router.calls, 1, 'one lookup for two warm-ups');
    assert.deepEqual(await collect(cache.lookup('k', new AbortController().signal)), ['a']);
    assert.equal(router.calls, 1, 'the asker joined the warm-up');
    cache.warm('k');
    assert.equal(router.calls, 1, 'known and fresh: not looked up again');
  });

  it('shares one lookup among concurrent askers, each seeing every provider', async () => {
    const router = countingRouter([p('a'), p('b')]);
    const cache = new LookupCache({ router });
    const signal = AbortSignal.timeout(5000);
    const results = await Promise.all([
      collect(cache.lookup('k', signal)),
      collect(cache.lookup('k', signal)),
      collect(cache.lookup('k', signal)),
    ]);
    assert.deepEqual(results, [
      ['a', 'b'],
      ['a', 'b'],
      ['a', 'b'],
    ]);
    assert.equal(router.calls, 1);
  });

  // Regression: at the default flags every cache expiry made the next request wait for a fresh lookup,
  // which missed the 20 ms resolve timeout about every 5 s; stale providers are now served at once.
  it('hands out the last providers at once when they are due a refresh, and refreshes in the background', async () => {
    const router = countingRouter([p('a')]);
    const cache = new LookupCache({ router }, { refreshMs: 50 });
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(router.calls, 1, 'fresh providers are reused');
    await sleep(80);
    const started = performance.now();
    for await (const provider of cache.lookup('k', AbortSignal.timeout(5000))) {
      assert.equal(provider.id, 'a');
      break;
    }
    assert.ok(performance.now() - started < 15, 'the stale provider came without waiting for the router');
    assert.equal(router.calls, 2, 'a refresh started');
    await sleep(40);
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(router.calls, 2, 'the refreshed entry is fresh again');
  });

  it('takes what a refresh found; a refresh that finds nobody drops the key, one that times out keeps it', async () => {
    let holders = [p('a')];
    let hang = false;
    const router = {
      ...countingRouter([]),
      async *lookup(_key: string, signal: AbortSignal): AsyncIterable<Provider> {
        // A hanging lookup outlives its time bound, then ends with nothing.
        if (hang) await sleep(100);
        if (!signal.aborted) yield* holders;
      },
    };
    const cache = new LookupCache({ router }, { refreshMs: 10, lookupTimeoutMs: 30 });
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['a']);
    holders = [p('b')];
    await sleep(20);
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['b']);
    hang = true;
    await sleep(20);
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.deepEqual(
      await collect(cache.lookup('k', AbortSignal.timeout(5000))),
      ['b'],
      'kept through a timeout',
    );
    hang = false;
    holders = [];
    await sleep(20);
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), [], 'withdrawn');
  });

  it('never hands out a provider that failed for the key; with none left the next asker looks up again', async () => {
    const router = countingRouter([p('a'), p('b')]);
    const cache = new LookupCache({ router });
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    cache.failed('k', 'a');
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['b']);
    assert.equal(router.calls, 1);
    cache.failed('k', 'b');
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['a', 'b']);
    assert.equal(router.calls, 2);
  });

  // Regression: a node that restarted on another registry port was still asked at its old one, and then
  // set aside for 10 s although it was back.
  it('re-checks remembered providers with the router: a gone one is skipped, a moved one asked where it is now', async () => {
    const router = countingRouter([p('a'), p('b')]);
    const cache = new LookupCache({ router });
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    router.now.set('a', undefined);
    router.now.set('b', { id: 'b', registry: 'http://b-restarted' });
    const seen: Provider[] = [];
    for await (const provider of cache.lookup('k', AbortSignal.timeout(5000))) seen.push(provider);
    assert.deepEqual(seen, [{ id: 'b', registry: 'http://b-restarted' }]);
    assert.equal(router.calls, 1);
  });

  // Regression (issue 26): with every remembered provider gone (holders restarting), the key was not looked
  // up again until its entry was 5 s old, so the request missed at once although a restarted holder was back.
  it('looks a key up again at once when every provider it remembers is gone, and tells it is held', async () => {
    const router = countingRouter([p('a'), p('b')]);
    const cache = new LookupCache({ router });
    assert.equal(cache.held('k'), false);
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(cache.held('k'), true);
    cache.failed('k', 'b');
    router.now.set('a', undefined);
    router.now.delete('b');
    // The fresh lookup finds both again (a is back on the DHT's word; b restarted).
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['a', 'b']);
    assert.equal(router.calls, 2);
    assert.equal(cache.held('k'), true, 'held while every provider failed');
  });

  it('offers a hot key’s holders in turn, spreading its load', async () => {
    const router = countingRouter([p('a'), p('b'), p('c')]);
    const cache = new LookupCache({ router });
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    const firsts = new Set<string>();
    for (let i = 0; i < 3; i++)
      firsts.add((await collect(cache.lookup('k', AbortSignal.timeout(5000))))[0] ?? '');
    assert.deepEqual([...firsts].sort(), ['a', 'b', 'c']);
  });

  it('tells how long each lookup took to its first provider', async () => {
    const seen: Array<number | undefined> = [];
    const found = new LookupCache({ router: countingRouter([p('a')]), onLookup: (ms) => seen.push(ms) });
    await collect(found.lookup('k', AbortSignal.timeout(5000)));
    const none = new LookupCache({ router: countingRouter([]), onLookup: (ms) => seen.push(ms) });
    await collect(none.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(seen.length, 2);
    assert.ok((seen[0] ?? 0) >= 15, `first provider after ${seen[0]} ms`);
    assert.equal(seen[1], undefined);
  });

  it('keeps a miss only briefly, and forgets on request', async () => {
    const empty = countingRouter([]);
    const cache = new LookupCache({ router: empty }, { negativeTtlMs: 50 });
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(empty.calls, 1);
    await sleep(80);
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(empty.calls, 2);
    cache.forget('k');
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(empty.calls, 3);
  });

  it('lets an asker stop early without ending the shared lookup for others', async () => {
    const router = countingRouter([p('a'), p('b'), p('c')]);
    const cache = new LookupCache({ router });
    const early = new AbortController();
    const first: string[] = [];
    for await (const provider of cache.lookup('k', early.signal)) {
      first.push(provider.id);
      early.abort();
    }
    assert.deepEqual(first, ['a']);
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['a', 'b', 'c']);
  });

  // Regression: a request that gave up on a slow lookup threw it away, so on a loaded node each request
  // started a new lookup and none finished within a request's wait.
  it('keeps a slow lookup running for the next request when one gives up on it', async () => {
    const router = countingRouter([p('a')]);
    const cache = new LookupCache({ router });
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5))), []);
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['a']);
    assert.equal(router.calls, 1, 'the second asker joined the first lookup');
  });
});
