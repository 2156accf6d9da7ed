import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ManifestUnknownError } from '../../../src/main/errors.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { MemoryStore } from '../../../src/main/store/memory.js';
import type { Content, ContentStore } from '../../../src/main/store/store.js';
import { BookedStore, KnownTagsStore } from '../../../src/main/tags/known-tags.js';
import { TagBook } from '../../../src/main/tags/tag-book.js';
import { described } from '../../harness/content.js';

const REG = '127.0.0.1:5000';

async function manifest(store: MemoryStore, seed: string): Promise<Digest> {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: seed, size: 1 },
      layers: [],
    }),
  );
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
  await store.ingest(digest, [bytes]);
  return digest;
}

/** A store whose tag answers are scripted, standing in for upstream plus peers. */
function answering(inner: ContentStore, answer: () => Promise<Content | undefined>): ContentStore {
  return Object.assign(Object.create(inner) as ContentStore, {
    resolve: answer,
    stat: (digest: Digest) => inner.stat(digest),
  });
}

describe('BookedStore (what peers and the advertiser see)', () => {
  it('resolves and advertises the book’s mappings whose manifest is held, with their confirmation time', async () => {
    const store = new MemoryStore();
    const held = await manifest(store, 'a');
    const book = new TagBook({});
    const view = new BookedStore({ inner: store, book });
    book.confirm(`${REG}/app:v1`, held, 1234);
    book.confirm(`${REG}/app:gone`, `sha256:${'9'.repeat(64)}` as Digest, 1234);
    assert.deepEqual(described(await view.resolve(REG, 'app', 'v1')), {
      ...described(await store.stat(held)),
      confirmedAt: 1234,
    });
    assert.equal(await view.resolve(REG, 'app', 'gone'), undefined);
    const keys = await view.listKeys();
    assert.ok(keys.has(`${REG}/app:v1`));
    assert.ok(!keys.has(`${REG}/app:gone`), 'a tag whose manifest is elsewhere is not advertised');
  });

  it('stops resolving and advertising a tag the store itself knows once it is invalidated', async () => {
    const store = new MemoryStore();
    const held = await manifest(store, 'b');
    await store.tag(REG, 'imported', 'v1', held);
    const book = new TagBook({});
    const view = new BookedStore({ inner: store, book });
    assert.equal((await view.resolve(REG, 'imported', 'v1'))?.digest, held);
    await book.invalidate(`${REG}/imported:v1`, Date.now());
    assert.equal(await view.resolve(REG, 'imported', 'v1'), undefined);
    assert.ok(!(await view.listKeys()).has(`${REG}/imported:v1`));
    assert.ok((await view.listKeys()).has(held), 'the manifest itself is still served by digest');
  });
});

describe('KnownTagsStore (what clients see)', () => {
  it('remembers a confirmed answer and falls back to it when nothing answers', async () => {
    const store = new MemoryStore();
    const digest = await manifest(store, 'c');
    const book = new TagBook({});
    let upstreamUp = true;
    const inner = answering(store, async () =>
      upstreamUp ? { ...(await store.stat(digest))!, confirmedAt: Date.now() } : undefined,
    );
    const known = new KnownTagsStore({ inner, book });
    assert.equal((await known.resolve(REG, 'app', 'v1'))?.digest, digest);
    upstreamUp = false;
    const offline = await known.resolve(REG, 'app', 'v1');
    assert.equal(offline?.digest, digest);
    assert.ok(offline?.confirmedAt !== undefined);
  });

  it('refuses a peer’s answer older than the max age, or confirmed before an invalidation', async () => {
    const store = new MemoryStore();
    const digest = await manifest(store, 'd');
    const book = new TagBook({}, { maxAgeMs: 60_000 });
    let confirmedAt = Date.now() - 120_000;
    const inner = answering(store, async () => ({ ...(await store.stat(digest))!, confirmedAt }));
    const known = new KnownTagsStore({ inner, book });
    assert.equal(await known.resolve(REG, 'app', 'v1'), undefined, 'two minutes old, max age one');
    confirmedAt = Date.now() - 1000;
    assert.equal((await known.resolve(REG, 'app', 'v1'))?.digest, digest);
    await book.invalidate(`${REG}/app:v1`, Date.now());
    assert.equal(await known.resolve(REG, 'app', 'v1'), undefined);
  });

  it('lets a registry’s "no such tag" through instead of answering from memory', async () => {
    const store = new MemoryStore();
    const digest = await manifest(store, 'e');
    const book = new TagBook({});
    book.confirm(`${REG}/app:v1`, digest, Date.now());
    const inner = answering(store, async () => {
      throw new ManifestUnknownError('upstream has no manifest v1');
    });
    await assert.rejects(new KnownTagsStore({ inner, book }).resolve(REG, 'app', 'v1'), ManifestUnknownError);
  });
});
