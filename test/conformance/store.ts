import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobUnknownError } from '../../src/main/errors.js';
import { type Digest, parseDigest } from '../../src/main/oci/digest.js';
import {
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_OCTET_STREAM,
} from '../../src/main/oci/media-types.js';
import { type ContentStore, readAll } from '../../src/main/store/store.js';
import { described, openContent } from '../harness/content.js';
import type { MultiArchFixture, SingleImageFixture } from '../harness/fixtures.js';

/** What every store implementation is set up with before the suite runs. */
export interface StoreUnderTest {
  store: ContentStore;
  /** Registry host the images are known under. */
  registry: string;
  /** Tagged as `conf/small:small`. */
  small: SingleImageFixture;
  /** Tagged as `conf/multi:multi`; stores hold at least the index and the linux/amd64 image. */
  multi: MultiArchFixture;
  teardown(): Promise<void>;
}

async function readRange(
  store: ContentStore,
  digest: Digest,
  start: number,
  end: number,
  chunk = 64 << 10,
): Promise<Buffer> {
  const reader = await openContent(store, digest, { start, end });
  const parts: Buffer[] = [];
  try {
    const buffer = Buffer.alloc(chunk);
    for (let n = await reader.read(buffer); n > 0; n = await reader.read(buffer))
      parts.push(Buffer.from(buffer.subarray(0, n)));
  } finally {
    await reader.close();
  }
  return Buffer.concat(parts);
}

/** The ContentStore contract. Every implementation (memory, embedded, containerd) runs it. */
export function storeConformance(name: string, setup: () => Promise<StoreUnderTest>): void {
  describe(`ContentStore conformance: ${name}`, { timeout: 300_000 }, () => {
    let subject: StoreUnderTest;
    let store: ContentStore;
    const expected = (fixture: { dir: string }, digest: string): Promise<Buffer> =>
      readFile(join(fixture.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const amd64 = () => {
      const image = subject.multi.images.find(
        (candidate) => candidate.manifest.platform?.architecture === 'amd64',
      );
      assert.ok(image);
      return image;
    };

    before(async () => {
      subject = await setup();
      store = subject.store;
    });
    after(async () => {
      await subject?.teardown();
    });

    it('is ready', async () => {
      assert.equal(await store.ready(), true);
    });

    it('resolves a tag to its manifest', async () => {
      const found = described(await store.resolve(subject.registry, 'conf/small', subject.small.tag));
      assert.ok(found);
      const { confirmedAt, ...rest } = found;
      assert.deepEqual(rest, {
        digest: subject.small.image.manifest.digest,
        size: subject.small.image.manifest.size,
        mediaType: MEDIA_TYPE_OCI_MANIFEST,
      });
      // A store that knows when the tag was last pulled says so (containerd's updated_at); it is in the past.
      if (confirmedAt !== undefined)
        assert.ok(confirmedAt > 1.6e12 && confirmedAt <= Date.now(), String(confirmedAt));
    });

    it('resolves a tag to an index', async () => {
      const descriptor = await store.resolve(subject.registry, 'conf/multi', subject.multi.tag);
      assert.equal(descriptor?.digest, subject.multi.index.digest);
      assert.equal(descriptor?.mediaType, MEDIA_TYPE_OCI_INDEX);
    });

    it('does not resolve unknown tags, repositories or registries', async () => {
      assert.equal(await store.resolve(subject.registry, 'conf/small', 'nope'), undefined);
      assert.equal(await store.resolve(subject.registry, 'conf/none', subject.small.tag), undefined);
      assert.equal(await store.resolve('other.example:5000', 'conf/small', subject.small.tag), undefined);
    });

    it('stats manifests with their media type and blobs as octet-stream', async () => {
      const { manifest, config, layers } = subject.small.image;
      assert.equal((await store.stat(parseDigest(manifest.digest)))?.mediaType, MEDIA_TYPE_OCI_MANIFEST);
      assert.equal(
        (await store.stat(parseDigest(subject.multi.index.digest)))?.mediaType,
        MEDIA_TYPE_OCI_INDEX,
      );
      assert.equal(
        (await store.stat(parseDigest(amd64().manifest.digest)))?.mediaType,
        MEDIA_TYPE_OCI_MANIFEST,
      );
      // A config is JSON too, but it is not a manifest.
      assert.deepEqual(described(await store.stat(parseDigest(config.digest))), {
        digest: config.digest,
        size: config.size,
        mediaType: MEDIA_TYPE_OCTET_STREAM,
      });
      const layer = layers[0];
      assert.ok(layer);
      assert.deepEqual(described(await store.stat(parseDigest(layer.digest))), {
        digest: layer.digest,
        size: layer.size,
        mediaType: MEDIA_TYPE_OCTET_STREAM,
      });
    });

    it('stats unknown content as undefined', async () => {
      assert.equal(await store.stat(parseDigest(`sha256:${'0'.repeat(64)}`)), undefined);
    });

    it('reads whole blobs that hash to their digest', async () => {
      for (const blob of [
        subject.small.image.manifest,
        subject.small.image.config,
        ...subject.small.image.layers,
      ]) {
        const bytes = await readRange(store, parseDigest(blob.digest), 0, blob.size - 1);
        assert.equal(bytes.length, blob.size);
        assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
      }
    });

    it('reads byte ranges exactly, with any buffer size', async () => {
      const layer = subject.small.image.layers[0];
      assert.ok(layer);
      const whole = await expected(subject.small, layer.digest);
      const digest = parseDigest(layer.digest);
      for (const [start, end] of [
        [0, 0],
        [1, 1000],
        [layer.size - 1, layer.size - 1],
        [4096, layer.size - 1],
      ] as const) {
        assert.deepEqual(
          await readRange(store, digest, start, end, 7),
          whole.subarray(start, end + 1),
          `range ${start}-${end}`,
        );
      }
    });

    it('opens found content through its own handle, and names a file only if it holds the bytes', async () => {
      const layer = subject.small.image.layers[0];
      assert.ok(layer);
      const whole = await expected(subject.small, layer.digest);
      const content = await store.stat(parseDigest(layer.digest));
      assert.ok(content);
      const reader = await content.open({ start: 1, end: 10 });
      const into = Buffer.alloc(64);
      let n = 0;
      try {
        for (
          let got = await reader.read(into.subarray(n));
          got > 0;
          got = await reader.read(into.subarray(n))
        )
          n += got;
      } finally {
        await reader.close();
      }
      assert.deepEqual(into.subarray(0, n), whole.subarray(1, 11));
      const path = await content.localPath?.();
      if (path !== undefined) assert.deepEqual(await readFile(path), whole);
      // A tag's manifest opens the same way.
      const manifest = await store.resolve(subject.registry, 'conf/small', subject.small.tag);
      assert.ok(manifest);
      assert.deepEqual(await readAll(manifest), await expected(subject.small, manifest.digest));
    });

    it('refuses to open unknown content', async () => {
      await assert.rejects(
        openContent(store, parseDigest(`sha256:${'0'.repeat(64)}`), { start: 0, end: 0 }),
        BlobUnknownError,
      );
    });

    it('closes readers more than once without error', async () => {
      const reader = await openContent(store, parseDigest(subject.small.image.config.digest), {
        start: 0,
        end: 0,
      });
      await reader.close();
      await reader.close();
    });
  });
}
