import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobUnknownError, StoreUnavailableError } from '../errors.js';
import { type Digest, digestAlgorithm, digestHex } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, MEDIA_TYPE_OCTET_STREAM, sniffManifestMediaType } from '../oci/media-types.js';
import type { ByteRange } from '../oci/range.js';
import { imageName } from '../oci/reference.js';
import { FileRangeReader } from '../store/file-reader.js';
import { type BlobReader, type Content, type ContentStore, readAll } from '../store/store.js';
import { setBounded } from '../util/bounded-map.js';
import { ChangeNotifier } from '../util/changes.js';
import { withTimeout } from '../util/timeout.js';
import type { ContainerdClient } from './client.js';
import { GrpcRangeReader } from './grpc-reader.js';

export interface ContainerdStoreInit {
  /** containerd's content directory; blobs are read from it directly when shoal may read them. */
  contentPath: string;
  /** Longest wait for one containerd answer or one read, in ms. */
  timeoutMs: number;
  /** Most media types remembered per digest (content is immutable, so entries never go stale). */
  mediaTypeCacheSize?: number;
}

const DEFAULT_MEDIA_TYPE_CACHE_SIZE = 20_000;
const GC_SETTLE_MS = 3000;

/**
 * Serves what containerd already holds. Tags resolve through the image service, sizes come from content
 * info, bytes are read from the content directory when readable, otherwise through ranged Content/Read.
 */
export class ContainerdStore implements ContentStore {
  readonly kind = 'containerd';
  readonly #client: ContainerdClient;
  readonly #contentPath: string;
  readonly #timeoutMs: number;
  readonly #mediaTypes = new Map<Digest, string>();
  readonly #mediaTypeCacheSize: number;
  readonly #changes = new ChangeNotifier();
  #watching = false;
  #events: { cancel(): void } | undefined;
  #resubscribe: NodeJS.Timeout | undefined;
  #afterGc: NodeJS.Timeout | undefined;

  constructor(deps: { client: ContainerdClient }, init: ContainerdStoreInit) {
    this.#client = deps.client;
    this.#contentPath = init.contentPath;
    this.#timeoutMs = init.timeoutMs;
    this.#mediaTypeCacheSize = init.mediaTypeCacheSize ?? DEFAULT_MEDIA_TYPE_CACHE_SIZE;
  }

  async start(): Promise<void> {
    await this.#client.serverId();
  }

  async stop(): Promise<void> {
    this.#watching = false;
    clearTimeout(this.#resubscribe);
    clearTimeout(this.#afterGc);
    this.#events?.cancel();
    this.#client.close();
  }

  /** Present content digests, plus each image name (`<registry>/<repo>:<tag>`) whose target is present. */
  async listKeys(): Promise<Set<string>> {
    const keys = new Set<string>((await this.#client.listContent()).map((info) => info.digest));
    for (const image of await this.#client.listImages()) {
      const isTagName = /:[^/:@]+$/.test(image.name) && !image.name.includes('@');
      if (isTagName && keys.has(image.target.digest)) keys.add(image.name);
    }
    return keys;
  }

  /**
   * Image create/update/delete events of this namespace (containerd 1.6 sends none for blobs, and an
   * image event ends every pull). The subscription is made on first use and renewed if it drops.
   */
  onChange(listener: () => void): () => void {
    const unsubscribe = this.#changes.subscribe(listener);
    if (!this.#watching) {
      this.#watching = true;
      this.#watch();
    }
    return unsubscribe;
  }

  #watch(): void {
    if (!this.#watching) return;
    const events = this.#client.subscribe([`namespace==${this.#client.namespace},topic~="^/images/"`]);
    this.#events = events;
    events.on('data', () => {
      this.#changes.notify();
      // Deleting an image frees its content only when containerd's GC runs shortly after, with no event
      // of its own: look again once it has had time to.
      clearTimeout(this.#afterGc);
      this.#afterGc = setTimeout(() => this.#changes.notify(), GC_SETTLE_MS);
      this.#afterGc.unref();
    });
    events.on('error', () => undefined);
    events.on('close', () => {
      if (!this.#watching) return;
      // Whatever happened while unsubscribed is caught by a notify after renewing.
      this.#resubscribe = setTimeout(() => {
        this.#watch();
        this.#changes.notify();
      }, 1000);
      this.#resubscribe.unref();
    });
  }

  async ready(): Promise<boolean> {
    try {
      await this.#client.serverId();
      return true;
    } catch {
      return false;
    }
  }

  async resolve(registry: string, repository: string, tag: string): Promise<Content | undefined> {
    const image = await this.#client.getImage(imageName(registry, repository, tag));
    if (image === undefined) return undefined;
    const digest = image.target.digest as Digest;
    this.#remember(digest, image.target.mediaType);
    const descriptor = await this.stat(digest);
    // containerd updates an image when it pulls it again: the last time a registry confirmed the tag.
    const seconds = image.updatedAt?.seconds;
    return descriptor === undefined || typeof seconds !== 'number' || seconds <= 0
      ? descriptor
      : { ...descriptor, confirmedAt: seconds * 1000 + Math.floor((image.updatedAt?.nanos ?? 0) / 1e6) };
  }

  async stat(digest: Digest): Promise<Content | undefined> {
    const info = await this.#client.contentInfo(digest);
    if (info === undefined) return undefined;
    const content: Content = {
      digest,
      size: info.size,
      mediaType: MEDIA_TYPE_OCTET_STREAM,
      open: (range) => this.#open(digest, range),
      localPath: () => this.#localPath(digest),
    };
    return { ...content, mediaType: await this.#mediaType(content) };
  }

  async #open(digest: Digest, range: ByteRange): Promise<BlobReader> {
    const path = this.#blobPath(digest);
    if (path !== undefined) {
      // One open, no access() probe first: on the hot path the open itself tells whether shoal may read it.
      try {
        return await withTimeout(
          FileRangeReader.open(path, range),
          this.#timeoutMs,
          `open ${path}`,
          timeoutError,
        );
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw err;
        // Absent or unreadable here (another mount, no permission): containerd can still stream it.
      }
    }
    if ((await this.#client.contentInfo(digest)) === undefined) {
      throw new BlobUnknownError(`blob ${digest} is not in containerd`);
    }
    return new GrpcRangeReader(this.#client, digest, range, this.#timeoutMs);
  }

  /** The blob file in containerd's content directory when this process can read it. */
  async #localPath(digest: Digest): Promise<string | undefined> {
    const path = this.#blobPath(digest);
    if (path === undefined) return undefined;
    try {
      await withTimeout(access(path, constants.R_OK), this.#timeoutMs, `access ${path}`, timeoutError);
      return path;
    } catch {
      return undefined;
    }
  }

  /** Known media type, or sniffed from the bytes of small JSON content; cached since content is immutable. */
  async #mediaType(content: Content): Promise<string> {
    const known = this.#mediaTypes.get(content.digest);
    if (known !== undefined) return known;
    let mediaType = MEDIA_TYPE_OCTET_STREAM;
    if (content.size > 0 && content.size <= MAX_MANIFEST_BYTES) {
      const first = await this.#readHead(content.digest);
      if (first === 0x7b /* { */) {
        mediaType = sniffManifestMediaType(await readAll(content)) ?? MEDIA_TYPE_OCTET_STREAM;
      }
    }
    this.#remember(content.digest, mediaType);
    return mediaType;
  }

  async #readHead(digest: Digest): Promise<number | undefined> {
    const reader = await this.#open(digest, { start: 0, end: 0 });
    try {
      const one = Buffer.alloc(1);
      return (await reader.read(one)) === 1 ? one[0] : undefined;
    } finally {
      await reader.close();
    }
  }

  #remember(digest: Digest, mediaType: string): void {
    setBounded(this.#mediaTypes, digest, mediaType, this.#mediaTypeCacheSize);
  }

  #blobPath(digest: Digest): string | undefined {
    return digestAlgorithm(digest) === 'sha256'
      ? join(this.#contentPath, 'blobs', 'sha256', digestHex(digest))
      : undefined;
  }
}

function timeoutError(message: string): Error {
  return new StoreUnavailableError(message);
}
