import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DigestInvalidError, ManifestUnknownError } from '../../../src/main/errors.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { EmbeddedStore } from '../../../src/main/store/embedded.js';
import type { VerifyPool } from '../../../src/main/verify/pool.js';
import { openContent } from '../../harness/content.js';
import { startVerifier } from '../../harness/verifier.js';

const digestOf = (bytes: Buffer): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

describe('EmbeddedStore writes', () => {
  let dir: string;
  let store: EmbeddedStore;
  let verifier: VerifyPool;
  before(async () => {
    verifier = await startVerifier();
  });
  after(() => verifier.stop());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-embedded-unit-'));
    store = new EmbeddedStore({ verifier }, { dataDir: dir });
    await store.start();
  });
  afterEach(async () => {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses content that does not hash to its digest and leaves nothing behind', async () => {
    const claimed = digestOf(Buffer.from('what was promised'));
    await assert.rejects(store.ingest(claimed, [Buffer.from('something else')]), DigestInvalidError);
    assert.equal(await store.stat(claimed), undefined);
    assert.deepEqual(await readdir(join(dir, 'ingest')), []);
    assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), []);
  });

  it('removes half-written ingests on start (what a crash leaves)', async () => {
    await writeFile(join(dir, 'ingest', 'partial'), 'half a blob');
    const restarted = new EmbeddedStore({ verifier }, { dataDir: dir });
    await restarted.start();
    assert.deepEqual(await readdir(join(dir, 'ingest')), []);
  });

  it('tags only manifests it holds', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    await store.ingest(digestOf(config), [config]);
    await assert.rejects(store.tag('docker.io', 'app', 'v1', digestOf(config)), ManifestUnknownError);
    await assert.rejects(
      store.tag('docker.io', 'app', 'v1', `sha256:${'2'.repeat(64)}` as Digest),
      ManifestUnknownError,
    );
  });

  it('keeps tags across a restart', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: {}, layers: [] }));
    await store.ingest(digestOf(manifest), [manifest]);
    await Promise.all([
      store.tag('docker.io', 'app', 'a', digestOf(manifest)),
      store.tag('docker.io', 'app', 'b', digestOf(manifest)),
    ]);
    const restarted = new EmbeddedStore({ verifier }, { dataDir: dir });
    await restarted.start();
    assert.equal((await restarted.resolve('docker.io', 'app', 'a'))?.digest, digestOf(manifest));
    assert.equal(
      (await restarted.resolve('docker.io', 'app', 'b'))?.digest,
      digestOf(manifest),
      'concurrent tags both survive',
    );
  });
});

describe('EmbeddedStore with a size bound', () => {
  let dir: string;
  let verifier: VerifyPool;
  before(async () => {
    verifier = await startVerifier();
  });
  after(() => verifier.stop());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-bound-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const blob = (n: number): Buffer => Buffer.alloc(1 << 20, n);
  const held = async (store: EmbeddedStore, n: number) => (await store.stat(digestOf(blob(n)))) !== undefined;

  it('evicts the least recently used content once over the bound, never content being read', async () => {
    const store = new EmbeddedStore({ verifier }, { dataDir: dir, maxBytes: 3 << 20 });
    await store.start();
    for (const n of [1, 2, 3]) {
      await store.ingest(digestOf(blob(n)), [blob(n)]);
      await sleep(5);
    }
    // Blob 1 is read (most recent use now), and blob 2 is held open while blob 4 arrives.
    await (await openContent(store, digestOf(blob(1)), { start: 0, end: 0 })).close();
    const reading = await openContent(store, digestOf(blob(2)), { start: 0, end: 9 });
    await store.ingest(digestOf(blob(4)), [blob(4)]);
    assert.deepEqual(
      await Promise.all([1, 2, 3, 4].map((n) => held(store, n))),
      [true, true, false, true],
      'blob 3 went: blob 2 was older but being read',
    );
    await reading.close();
    assert.ok((store.heldBytes ?? 0) <= 3 << 20);
    await store.stop();
  });

  it('keeps the order of use across a restart, and applies a smaller bound at start', async () => {
    const store = new EmbeddedStore({ verifier }, { dataDir: dir, maxBytes: 8 << 20 });
    await store.start();
    for (const n of [1, 2, 3]) {
      await store.ingest(digestOf(blob(n)), [blob(n)]);
      await sleep(20);
    }
    await (await openContent(store, digestOf(blob(1)), { start: 0, end: 0 })).close();
    await sleep(50); // the use is written to the file's mtime in the background
    await store.stop();
    const smaller = new EmbeddedStore({ verifier }, { dataDir: dir, maxBytes: 2 << 20 });
    await smaller.start();
    assert.deepEqual(await Promise.all([1, 2, 3].map((n) => held(smaller, n))), [true, false, true]);
    await smaller.stop();
  });
});
