import { MemoryDatastore } from 'datastore-core';
import { Key } from 'interface-datastore';
import { IndexedDatastore } from '../src/main/routing/libp2p/datastore.js';

// What a DHT lookup costs the main thread before it leaves the node: kad-dht reads a key's providers with a
// prefix query on its datastore. libp2p's default MemoryDatastore (the baseline) against shoal's
// IndexedDatastore, holding as many provider records as a node of a 20-node cluster whose nodes each hold
// 2,000 blobs would (every node keeps every record: k = 20).
// Run: npm run bench -- datastore

const RECORDS = Number(process.env.BENCH_DATASTORE_RECORDS ?? 40_000);
const LOOKUPS = 200;

const cid = (i: number) => `CIQ${i.toString(36).padStart(55, 'a')}`;

async function lookupMs(store: MemoryDatastore | IndexedDatastore): Promise<number> {
  for (let i = 0; i < RECORDS; i++) {
    await store.put(
      new Key(
        `/dht/provider/${cid(i % (RECORDS / 20))}/12D3KooW${String(Math.floor(i / (RECORDS / 20))).padStart(44, 'x')}`,
      ),
      new Uint8Array(8),
    );
  }
  const started = performance.now();
  for (let i = 0; i < LOOKUPS; i++) {
    let found = 0;
    for await (const _ of store.query({ prefix: `/dht/provider/${cid((i * 7919) % (RECORDS / 20))}` }))
      found++;
    if (found !== 20) throw new Error(`a lookup found ${found} providers, not 20`);
  }
  return (performance.now() - started) / LOOKUPS;
}

export async function datastoreBench(): Promise<string[]> {
  const memory = await lookupMs(new MemoryDatastore());
  const indexed = await lookupMs(new IndexedDatastore());
  return [
    `provider lookup on a datastore of ${RECORDS} records (${RECORDS / 20} keys × 20 providers), mean of ${LOOKUPS}:`,
    `  libp2p MemoryDatastore ${memory.toFixed(3)} ms, shoal IndexedDatastore ${indexed.toFixed(3)} ms (${(memory / indexed).toFixed(0)}× less main-thread time)`,
  ];
}
