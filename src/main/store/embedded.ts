import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlobUnknownError,
  DigestInvalidError,
  ManifestUnknownError,
  StoreUnavailableError,
} from '../errors.js';
import { type Digest, digestAlgorithm, digestHex } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, MEDIA_TYPE_OCTET_STREAM, sniffManifestMediaType } from '../oci/media-types.js';
import type { ByteRange } from '../oci/range.js';
import { imageName } from '../oci/reference.js';
import { syncDirectory, writeFileAtomic } from '../util/atomic-file.js';
import { ChangeNotifier } from '../util/changes.js';
import type { DigestVerifier } from '../verify/verifier.js';
import { CacheBound } from './cache-bound.js';
import { CacheRoom, type FullReason, writeAll } from './disk.js';
import { FileRangeReader } from './file-reader.js';
import type { BlobReader, Content, Descriptor, WritableStore } from './store.js';

export interface EmbeddedStoreInit {
  /** Root directory; content lives in `blobs/sha256/<hex>`, the tag index in `index.json`. */
  dataDir: string;
  /** Most bytes kept, evicting least recently used content; 0 (default) keeps everything (`--cache-max-bytes`). */
  maxBytes?: number;
}

interface IndexFile {
  version: 1;
  /** `<registry>/<repo>:<tag>` → manifest digest. */
  tags: Record<string, Digest>;
  /** manifest digest → media type. */
  manifests: Record<string, string>;
}

/**
 * shoal's own content-addressed store. Content is committed only after a digest worker has checked it
 * (temp file, verify, fsync, rename), so a crash never leaves a partial blob under a digest name.
 */
export class EmbeddedStore implements WritableStore {
  readonly kind = 'embedded';
  readonly #dataDir: string;
  readonly #verifier: DigestVerifier;
  #index: IndexFile = { version: 1, tags: {}, manifests: {} };
  readonly #changes = new ChangeNotifier();
  /** Index writes run one after another so concurrent tags never lose an update. */
  #indexWrite: Promise<void> = Promise.resolve();
  /** Room for downloads into `ingest/` (pull-through spools). */
  readonly room: CacheRoom;
  /** What is held and its last use; with no bound (0) it only counts, and never evicts. */
  readonly #bound: CacheBound;
  readonly #onEvict: ((bytes: number) => void) | undefined;

  constructor(
    deps: {
      verifier: DigestVerifier;
      /** Told of content evicted to stay under the bound (its size), and of downloads refused or cut for want of room. */
      onEvict?: ((bytes: number) => void) | undefined;
      onFull?: ((reason: FullReason) => void) | undefined;
    },
    init: EmbeddedStoreInit,
  ) {
    this.#verifier = deps.verifier;
    this.#onEvict = deps.onEvict;
    this.#dataDir = init.dataDir;
    this.#bound = new CacheBound(init.maxBytes ?? 0);
    this.room = new CacheRoom(init.maxBytes ?? 0, join(init.dataDir, 'ingest'), deps.onFull);
  }

  async start(): Promise<void> {
    try {
      await mkdir(join(this.#dataDir, 'blobs', 'sha256'), { recursive: true });
      // Leftovers of an ingest cut short by a crash are never content.
      await rm(join(this.#dataDir, 'ingest'), { recursive: true, force: true });
      await mkdir(join(this.#dataDir, 'ingest'));
      this.#index = await this.#loadIndex();
      await this.#loadBound();
    } catch (cause) {
      throw new StoreUnavailableError(`embedded store at ${this.#dataDir} cannot be opened`, { cause });
    }
  }

  async stop(): Promise<void> {
    await this.#indexWrite;
  }

  async ready(): Promise<boolean> {
    try {
      return (await stat(join(this.#dataDir, 'blobs', 'sha256'))).isDirectory();
    } catch {
      return false;
    }
  }

  async listKeys(): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const hex of await readdir(join(this.#dataDir, 'blobs', 'sha256'))) {
      if (/^[0-9a-f]{64}$/.test(hex)) keys.add(`sha256:${hex}`);
    }
    for (const [name, digest] of Object.entries(this.#index.tags)) if (keys.has(digest)) keys.add(name);
    return keys;
  }

  onChange(listener: () => void): () => void {
    return this.#changes.subscribe(listener);
  }

  async resolve(registry: string, repository: string, tag: string): Promise<Content | undefined> {
    const digest = this.#index.tags[imageName(registry, repository, tag)];
    return digest === undefined ? undefined : this.stat(digest);
  }

  async stat(digest: Digest): Promise<Content | undefined> {
    const path = this.#blobPath(digest);
    if (path === undefined) return undefined;
    try {
      const info = await stat(path);
      const mediaType = this.#index.manifests[digest] ?? MEDIA_TYPE_OCTET_STREAM;
      return {
        digest,
        size: info.size,
        mediaType,
        open: (range) => this.#open(digest, path, range),
        localPath: async () => path,
      };
    } catch {
      return undefined;
    }
  }

  async #open(digest: Digest, path: string, range: ByteRange): Promise<BlobReader> {
    let reader: BlobReader;
    try {
      reader = await FileRangeReader.open(path, range);
    } catch (cause) {
      throw new BlobUnknownError(`blob ${digest} is not in the embedded store`, { cause });
    }
    const bound = this.#bound;
    if (bound.maxBytes <= 0) return reader;
    // Use is remembered on disk too (mtime), so the order survives a restart; never evicted while read.
    void utimes(path, new Date(), new Date()).catch(() => undefined);
    const release = bound.open(digest);
    return {
      read: (into) => reader.read(into),
      close: async () => {
        release();
        await reader.close();
        await this.#evict();
      },
    };
  }

  async ingest(
    digest: Digest,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<Descriptor> {
    const path = this.#blobPath(digest);
    if (path === undefined)
      throw new DigestInvalidError(`the embedded store keeps sha256 content only, not ${digest}`);
    const temp = join(this.#dataDir, 'ingest', `${digestHex(digest)}.${randomBytes(4).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o644);
    let size = 0;
    // The first bytes are kept only while the content could still be a manifest.
    let head: Uint8Array[] | undefined = [];
    try {
      try {
        for await (const chunk of source) {
          await writeAll(handle, chunk, size, temp);
          size += chunk.length;
          head = size <= MAX_MANIFEST_BYTES ? head?.concat(chunk) : undefined;
        }
        const verdict = await this.#verifier.verifyFile(temp, digest, size);
        if (!verdict.ok) {
          throw new DigestInvalidError(
            `content hashes to ${verdict.digest} (${verdict.code}), not ${digest}`,
          );
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
      await syncDirectory(join(this.#dataDir, 'blobs', 'sha256'));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const mediaType = head === undefined ? undefined : sniffManifestMediaType(Buffer.concat(head));
    if (mediaType !== undefined && this.#index.manifests[digest] !== mediaType) {
      await this.#updateIndex((index) => {
        index.manifests[digest] = mediaType;
      });
    }
    this.#bound.add(digest, size);
    await this.#evict();
    this.#changes.notify();
    return { digest, size, mediaType: mediaType ?? MEDIA_TYPE_OCTET_STREAM };
  }

  /** A fresh temporary path for content being downloaded (a spool); it is removed on the next start. */
  ingestPath(digest: Digest): string {
    return join(this.#dataDir, 'ingest', `${digestHex(digest)}.${randomBytes(4).toString('hex')}`);
  }

  /**
   * Takes in a file the caller has already verified and synced (a spool), under `digest`: a rename, so a
   * crash leaves either the whole blob or nothing. Small JSON content is recorded as a manifest if it is one.
   */
  async adopt(path: string, digest: Digest): Promise<Descriptor> {
    const target = this.#blobPath(digest);
    if (target === undefined)
      throw new DigestInvalidError(`the embedded store keeps sha256 content only, not ${digest}`);
    const info = await stat(path);
    let mediaType: string | undefined;
    if (info.size > 0 && info.size <= MAX_MANIFEST_BYTES)
      mediaType = sniffManifestMediaType(await readFile(path));
    await rename(path, target);
    await syncDirectory(join(this.#dataDir, 'blobs', 'sha256'));
    if (mediaType !== undefined && this.#index.manifests[digest] !== mediaType) {
      await this.#updateIndex((index) => {
        index.manifests[digest] = mediaType;
      });
    }
    this.#bound.add(digest, info.size);
    await this.#evict();
    this.#changes.notify();
    return { digest, size: info.size, mediaType: mediaType ?? MEDIA_TYPE_OCTET_STREAM };
  }

  /** Deletes content found corrupt; its tags stop resolving and it stops being advertised. */
  async remove(digest: Digest): Promise<void> {
    const path = this.#blobPath(digest);
    if (path === undefined) return;
    await rm(path, { force: true });
    this.#bound.remove(digest);
    this.#changes.notify();
  }

  /** Bytes of content held. */
  get heldBytes(): number {
    return this.#bound.totalBytes;
  }

  /** Deletes least recently used content until the store is back under its bound. */
  async #evict(): Promise<void> {
    const victims = this.#bound.victims();
    for (const digest of victims) {
      const path = this.#blobPath(digest);
      if (path !== undefined) await rm(path, { force: true });
      this.#onEvict?.(this.#bound.sizeOf(digest));
      this.#bound.remove(digest);
    }
    if (victims.length > 0) this.#changes.notify();
  }

  /** Counts what is on disk, then evicts what is over the bound. */
  async #loadBound(): Promise<void> {
    await this.#bound.addDirectory(join(this.#dataDir, 'blobs', 'sha256'));
    await this.#evict();
  }

  async tag(registry: string, repository: string, tag: string, digest: Digest): Promise<void> {
    const descriptor = await this.stat(digest);
    if (descriptor === undefined || descriptor.mediaType === MEDIA_TYPE_OCTET_STREAM) {
      throw new ManifestUnknownError(`cannot tag ${digest}: no such manifest in the embedded store`);
    }
    await this.#updateIndex((index) => {
      index.tags[imageName(registry, repository, tag)] = digest;
    });
    this.#changes.notify();
  }

  #blobPath(digest: Digest): string | undefined {
    // Digests are validated lowercase hex, so the file name cannot leave the blobs directory.
    return digestAlgorithm(digest) === 'sha256'
      ? join(this.#dataDir, 'blobs', 'sha256', digestHex(digest))
      : undefined;
  }

  async #loadIndex(): Promise<IndexFile> {
    let text: string;
    try {
      text = await readFile(join(this.#dataDir, 'index.json'), 'utf8');
    } catch {
      return { version: 1, tags: {}, manifests: {} };
    }
    const parsed = JSON.parse(text) as Partial<IndexFile>;
    return { version: 1, tags: parsed.tags ?? {}, manifests: parsed.manifests ?? {} };
  }

  async #updateIndex(change: (index: IndexFile) => void): Promise<void> {
    const write = this.#indexWrite.then(async () => {
      change(this.#index);
      await writeFileAtomic(join(this.#dataDir, 'index.json'), JSON.stringify(this.#index));
    });
    this.#indexWrite = write.catch(() => undefined);
    await write;
  }
}
