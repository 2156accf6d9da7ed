import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryDatastore } from 'datastore-core';
import { Key } from 'interface-datastore';
import { IndexedDatastore } from '../../../src/main/routing/libp2p/datastore.js';
import { seededRandom } from '../../harness/random.js';

async function all<T>(items: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const listed = async (store: MemoryDatastore | IndexedDatastore, prefix?: string) =>
  (await all(store.query(prefix === undefined ? {} : { prefix })))
    .map(({ key, value }) => `${key.toString()}=${Buffer.from(value).toString('hex')}`)
    .sort();

const keysListed = async (store: MemoryDatastore | IndexedDatastore, prefix: string) =>
  (await all(store.queryKeys({ prefix }))).map((key) => key.toString()).sort();

describe('IndexedDatastore', () => {
  it('answers every query, get and has as libp2p’s MemoryDatastore does, through puts and deletes', async () => {
    const next = seededRandom(24);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
    // Short names that are prefixes of one another, so prefix queries cut across siblings.
    const names = ['a', 'ab', 'abc', 'b', 'provider', 'providers', 'peers', 'p', 'CIQX', 'CIQXY', '12D3'];
    const randomPath = () =>
      `/${Array.from({ length: 1 + Math.floor(next() * 4) }, () => pick(names)).join('/')}`;
    const memory = new MemoryDatastore();
    const indexed = new IndexedDatastore();
    const held = new Set<string>();
    for (let step = 0; step < 3000; step++) {
      const path = randomPath();
      if (next() < 0.3 && held.size > 0) {
        const gone = pick([...held]);
        await memory.delete(new Key(gone));
        await indexed.delete(new Key(gone));
        held.delete(gone);
      } else {
        const value = new Uint8Array([step & 255, step >> 8]);
        await memory.put(new Key(path), value);
        await indexed.put(new Key(path), value);
        held.add(new Key(path).toString());
      }
      if (step % 25 === 0) {
        const probe = randomPath();
        // A whole path, a path cut inside its last name, a path ending in a slash, and none.
        for (const prefix of [probe, probe.slice(0, -1), `${probe}/`, '/', undefined]) {
          assert.deepEqual(await listed(indexed, prefix), await listed(memory, prefix), `query ${prefix}`);
        }
        assert.deepEqual(await keysListed(indexed, probe), await keysListed(memory, probe));
        assert.equal(await indexed.has(new Key(probe)), await memory.has(new Key(probe)));
      }
    }
    assert.equal(indexed.size, held.size);
    for (const path of held) {
      assert.deepEqual(await indexed.get(new Key(path)), await memory.get(new Key(path)));
    }
    await assert.rejects(async () => indexed.get(new Key('/not/there')), { name: 'NotFoundError' });
  });

  it('answers a provider lookup from the keys below its prefix alone', async () => {
    const store = new IndexedDatastore();
    for (let i = 0; i < 20_000; i++) {
      await store.put(
        new Key(`/dht/provider/CIQ${String(i).padStart(40, '0')}/12D3KooWpeer${i % 7}`),
        new Uint8Array(1),
      );
    }
    // kad-dht asks for `/dht/provider/<cid>`: the two records of that cid, and nothing of its 19,999 neighbours
    // is visited (the query's own filter would hide such a walk; _all shows it).
    const target = `/dht/provider/CIQ${String(1234).padStart(40, '0')}`;
    await store.put(new Key(`${target}/12D3KooWother`), new Uint8Array(1));
    const visited = await all(store._all({ prefix: target }));
    assert.deepEqual(visited.map(({ key }) => key.toString()).sort(), [
      `${target}/12D3KooWother`,
      `${target}/12D3KooWpeer2`,
    ]);
  });
});
