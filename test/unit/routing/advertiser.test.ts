import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/main/log/logger.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { Advertiser } from '../../../src/main/routing/advertiser.js';
import { MemoryNetwork, MemoryRouter } from '../../../src/main/routing/memory.js';
import type { Provider } from '../../../src/main/routing/router.js';
import { MemoryStore } from '../../../src/main/store/memory.js';
import { waitFor } from '../../harness/process.js';

const digestOf = (text: string): Digest =>
  `sha256:${createHash('sha256').update(text).digest('hex')}` as Digest;

async function found(router: MemoryRouter, key: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const provider of router.lookup(key, AbortSignal.timeout(1000)) as AsyncIterable<Provider>)
    ids.push(provider.id);
  return ids;
}

async function setup(withPeer = true) {
  const network = new MemoryNetwork();
  const router = new MemoryRouter({ network }, { id: 'self', registry: 'http://self' });
  const peer = new MemoryRouter({ network }, { id: 'peer', registry: 'http://peer' });
  await router.start();
  if (withPeer) await peer.start();
  const store = new MemoryStore();
  const advertiser = new Advertiser(
    { store, router, log: silentLogger() },
    { debounceMs: 10, notReadyRetryMs: 20 },
  );
  return { store, router, peer, advertiser };
}

describe('Advertiser', () => {
  it('announces what the store holds at start, and tags with their manifests', async () => {
    const { store, peer, advertiser } = await setup();
    const manifest = JSON.stringify({ schemaVersion: 2, config: {}, layers: [] });
    await store.ingest(digestOf(manifest), [Buffer.from(manifest)]);
    await store.tag('docker.io', 'app', 'v1', digestOf(manifest));
    advertiser.start();
    await advertiser.settled(2000);
    assert.deepEqual(await found(peer, digestOf(manifest)), ['self']);
    assert.deepEqual(await found(peer, 'docker.io/app:v1'), ['self']);
    await advertiser.stop();
  });

  it('announces new content after a change and withdraws content that is gone', async () => {
    const { store, peer, advertiser } = await setup();
    advertiser.start();
    await store.ingest(digestOf('layer'), [Buffer.from('layer')]);
    await waitFor('advertised', async () => (await found(peer, digestOf('layer'))).length === 1, 2000);
    store.delete(digestOf('layer'));
    await waitFor('withdrawn', async () => (await found(peer, digestOf('layer'))).length === 0, 2000);
    assert.equal(advertiser.lastSync?.withdrawn, 1);
    await advertiser.stop();
  });

  it('waits while the routing table is empty, then announces once a peer appears', async () => {
    const { store, peer, advertiser } = await setup(false);
    await store.ingest(digestOf('early'), [Buffer.from('early')]);
    advertiser.start();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(advertiser.lastSync, undefined, 'nothing is provided into an empty routing table');
    await peer.start();
    await advertiser.settled(2000);
    assert.deepEqual(await found(peer, digestOf('early')), ['self']);
    await advertiser.stop();
  });
});
