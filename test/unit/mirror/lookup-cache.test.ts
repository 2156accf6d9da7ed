import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LookupCache } from '../../../src/main/mirror/lookup-cache.js';
import type { Provider, Router } from '../../../src/main/routing/router.js';

/** A router whose lookups are counted and yield its providers slowly. */
function countingRouter(providers: Provider[]): Router & { calls: number } {
  const router = {
    calls: 0,
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

  it('reuses a finished lookup within its TTL and asks again after it', async () => {
    const router = countingRouter([p('a')]);
    const cache = new LookupCache({ router }, { ttlMs: 100 });
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(router.calls, 1);
    await sleep(150);
    await collect(cache.lookup('k', AbortSignal.timeout(5000)));
    assert.equal(router.calls, 2);
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
    cache.forgetFinished('k');
    assert.deepEqual(await collect(cache.lookup('k', AbortSignal.timeout(5000))), ['a']);
    assert.equal(router.calls, 1, 'the second asker joined the first lookup');
  });
});
