import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { DigestInvalidError, ManifestUnknownError } from '../../../src/main/errors.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { EmbeddedStore } from '../../../src/main/store/embedded.js';
import type { VerifyPool } from '../../../src/main/verify/pool.js';
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
