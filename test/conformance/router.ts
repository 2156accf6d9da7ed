import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseDigest } from '../../src/main/oci/digest.js';
import type { Provider, Router } from '../../src/main/routing/router.js';
import { waitFor } from '../harness/process.js';

/** A set of connected routers; `registries[i]` is what others must learn as router i's registry. */
export interface RouterCluster {
  routers: Router[];
  registries: string[];
  teardown(): Promise<void>;
}

async function collect(router: Router, key: string, timeoutMs = 3000): Promise<Provider[]> {
  const found: Provider[] = [];
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    for await (const provider of router.lookup(key, signal)) found.push(provider);
  } catch (err) {
    if (!signal.aborted) throw err;
  }
  return found;
}

/** The Router contract. Both the in-memory router and the libp2p router run it. */
export function routerConformance(name: string, makeCluster: (size: number) => Promise<RouterCluster>): void {
  describe(`Router conformance: ${name}`, { timeout: 120_000 }, () => {
    let cluster: RouterCluster;
    const router = (i: number): Router => cluster.routers[i] as Router;
    let keyCounter = 0;
    const freshKey = (): string => `sha256:${(++keyCounter).toString(16).padStart(64, '0')}`;

    before(async () => {
      cluster = await makeCluster(4);
      await waitFor(
        `${name} routers ready`,
        async () => cluster.routers.every((each) => each.ready()),
        20_000,
      );
    });
    after(() => cluster?.teardown());

    it('a lone router is not ready', async () => {
      const lone = await makeCluster(1);
      try {
        assert.equal(lone.routers[0]?.ready(), false);
      } finally {
        await lone.teardown();
      }
    });

    it('finds a key advertised on another node, with that node’s own registry address', async () => {
      const key = freshKey();
      await router(0).advertise([key]);
      const found = await collect(router(3), key);
      assert.deepEqual(
        found.map((provider) => provider.registry),
        [cluster.registries[0]],
      );
    });

    it('finds every provider of a key, and tag keys as well as digests', async () => {
      const key = 'registry.example:5000/team/app:v1';
      await router(0).advertise([key]);
      await router(1).advertise([key]);
      // A record reaches the other nodes a moment after advertise() returns; a lookup may end before.
      const expected = [cluster.registries[0], cluster.registries[1]].sort();
      let found: string[] = [];
      await waitFor(
        'both providers found',
        async () => {
          found = (await collect(router(2), key)).map((provider) => provider.registry).sort();
          return found.length === 2;
        },
        5000,
      ).catch(() => undefined);
      assert.deepEqual(found, expected);
    });

    it('never returns the asking node itself', async () => {
      const key = freshKey();
      await router(2).advertise([key]);
      assert.deepEqual(await collect(router(2), key, 1500), []);
    });

    it('ends a lookup for an unknown key without hanging', async () => {
      const started = Date.now();
      assert.deepEqual(await collect(router(1), freshKey(), 5000), []);
      assert.ok(Date.now() - started < 5000);
    });

    it('knows the other members and reaches any of them by id, never itself', async () => {
      await waitFor('every member known', async () => router(0).members().length === 3, 10_000);
      const ids = new Set(router(0).members());
      assert.ok(!ids.has(router(0).selfId));
      for (const i of [1, 2, 3]) {
        assert.ok(ids.has(router(i).selfId));
        const provider = await router(0).provider(router(i).selfId, AbortSignal.timeout(3000));
        assert.equal(provider?.registry, cluster.registries[i]);
      }
      assert.equal(await router(0).provider(router(0).selfId, AbortSignal.timeout(3000)), undefined);
    });

    it('delivers a notice to a member with the sender’s id, and reports whether it was taken', async () => {
      const heard: Array<[string, unknown]> = [];
      router(2).onMessage('corrupt', async (from, message) => {
        heard.push([from, message]);
        return true;
      });
      router(2).onMessage('tag-invalidated', async (from, message) => {
        heard.push([from, message]);
        return false;
      });
      const digest = parseDigest(`sha256:${'a'.repeat(64)}`);
      const signal = () => AbortSignal.timeout(5000);
      assert.equal(await router(1).tell(router(2).selfId, { kind: 'corrupt', digest }, signal()), true);
      const invalidation = { kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: 1000 } as const;
      assert.equal(await router(1).tell(router(2).selfId, invalidation, signal()), false);
      assert.deepEqual(heard, [
        [router(1).selfId, { kind: 'corrupt', digest }],
        [router(1).selfId, invalidation],
      ]);
      // Malformed or planted notices never reach the handler: a name that is not canonical, a time far ahead.
      const planted = {
        kind: 'tag-invalidated',
        name: 'docker.io/library/app:v1',
        at: Date.now() + 86_400_000,
      };
      assert.equal(await router(1).tell(router(2).selfId, planted as never, signal()), false);
      assert.equal(
        await router(1).tell(router(2).selfId, { kind: 'corrupt', digest: 'x' } as never, signal()),
        false,
      );
      assert.equal(heard.length, 2);
      assert.equal(await router(1).tell('not-a-member', { kind: 'corrupt', digest }, signal()), false);
      // A kind nobody on the receiver handles is refused.
      assert.equal(await router(1).tell(router(3).selfId, { kind: 'corrupt', digest }, signal()), false);
    });

    it('verifies a member’s signature, bound to the signed bytes and the signer', async () => {
      const payload = new TextEncoder().encode('GET /v2/x/blobs/sha256:1');
      const signature = await router(1).sign(payload);
      const signal = () => AbortSignal.timeout(5000);
      assert.equal(await router(2).verifyMember(router(1).selfId, payload, signature, signal()), true);
      const other = new TextEncoder().encode('GET /v2/x/blobs/sha256:2');
      assert.equal(await router(2).verifyMember(router(1).selfId, other, signature, signal()), false);
      assert.equal(await router(2).verifyMember(router(3).selfId, payload, signature, signal()), false);
      assert.equal(await router(2).verifyMember('garbage', payload, signature, signal()), false);
      assert.equal(await router(1).verifyMember(router(1).selfId, payload, signature, signal()), false);
    });

    // The registry port drains after the router stopped (and listens before it started): requests in that
    // window must see a node alone, not an error that becomes a 500.
    it('once stopped, answers as a node that knows nobody, never with an error', async () => {
      const pair = await makeCluster(2);
      try {
        const [stopped, other] = pair.routers as [Router, Router];
        const key = freshKey();
        await other.advertise([key]);
        await waitFor('the provider found', async () => (await collect(stopped, key)).length === 1, 10_000);
        const id = stopped.selfId;
        const known = { id: other.selfId, registry: pair.registries[1] as string };
        await stopped.stop();
        assert.equal(stopped.selfId, id, 'its id outlives the stop');
        assert.deepEqual(await collect(stopped, key), []);
        assert.deepEqual(stopped.members(), []);
        assert.equal(stopped.current(known), undefined);
        assert.equal(await stopped.provider(other.selfId, AbortSignal.timeout(3000)), undefined);
        assert.equal(
          await stopped.tell(
            other.selfId,
            { kind: 'corrupt', digest: parseDigest(key) },
            AbortSignal.timeout(3000),
          ),
          false,
        );
        assert.equal(stopped.ready(), false);
      } finally {
        await pair.teardown();
      }
    });

    it('stops returning a node within seconds of it dying', async (t) => {
      const key = freshKey();
      await router(1).advertise([key]);
      await router(3).advertise([key]);
      // A record reaches the other nodes a moment after advertise() returns; a lookup may end before.
      await waitFor('both providers found', async () => (await collect(router(2), key)).length === 2, 5000);
      const dead = router(1).selfId;
      await router(1).stop();
      const started = Date.now();
      const found = await collect(router(2), key);
      const elapsed = Date.now() - started;
      t.diagnostic(`${name}: lookup right after a provider died took ${elapsed} ms`);
      assert.deepEqual(
        found.map((provider) => provider.registry),
        [cluster.registries[3]],
      );
      assert.ok(elapsed < 5000, `dead provider filtered in ${elapsed} ms`);
      assert.equal(
        router(2).current({ id: dead, registry: cluster.registries[1] as string }),
        undefined,
        'a provider remembered from before is known gone',
      );
      const live = { id: router(3).selfId, registry: cluster.registries[3] as string };
      assert.deepEqual(router(2).current(live), live);
      assert.equal(
        await router(2).provider(dead, AbortSignal.timeout(3000)),
        undefined,
        'a dead member is unreachable',
      );
      assert.ok(!router(2).members().includes(dead), 'and is no longer a member');
    });
  });
}
