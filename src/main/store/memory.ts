import { createHash } from 'node:crypto';
import { BlobUnknownError, DigestInvalidError, ManifestUnknownError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { MEDIA_TYPE_OCTET_STREAM, sniffManifestMediaType } from '../oci/media-types.js';
import type { ByteRange } from '../oci/range.js';
import { imageName } from '../oci/reference.js';
import { ChangeNotifier } from '../util/changes.js';
import type { BlobReader, Content, Descriptor, WritableStore } from './store.js';

/** In-memory store for unit tests; behaves like the embedded store behind the same interface. */
export class MemoryStore implements WritableStore {
  readonly kind = 'memory';
  readonly #blobs = new Map<Digest, { bytes: Buffer; mediaType: string }>();
  readonly #tags = new Map<string, Digest>();
  readonly #changes = new ChangeNotifier();

  async listKeys(): Promise<Set<string>> {
    const keys = new Set<string>(this.#blobs.keys());
    for (const [name, digest] of this.#tags) if (this.#blobs.has(digest)) keys.add(name);
    return keys;
  }

  onChange(listener: () => void): () => void {
    return this.#changes.subscribe(listener);
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async ready(): Promise<boolean> {
    return true;
  }

  async resolve(registry: string, repository: string, tag: string): Promise<Content | undefined> {
    const digest = this.#tags.get(imageName(registry, repository, tag));
    return digest === undefined ? undefined : this.stat(digest);
  }

  async stat(digest: Digest): Promise<Content | undefined> {
    const blob = this.#blobs.get(digest);
    if (blob === undefined) return undefined;
    return {
      digest,
      size: blob.bytes.length,
      mediaType: blob.mediaType,
      open: (range) => this.open(digest, range),
    };
  }

  /** What a handle's `open` calls; public so test stores can make readers misbehave. */
  async open(digest: Digest, range: ByteRange): Promise<BlobReader> {
    const blob = this.#blobs.get(digest);
    if (blob === undefined) throw new BlobUnknownError(`blob ${digest} is not in the memory store`);
    let position = range.start;
    return {
      read: async (into) => {
        const n = blob.bytes.copy(into, 0, position, Math.min(range.end + 1, position + into.length));
        position += n;
        return n;
      },
      close: async () => {},
    };
  }

  async ingest(
    digest: Digest,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<Descriptor> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of source) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== digest) throw new DigestInvalidError(`content hashes to ${actual}, not ${digest}`);
    const mediaType = sniffManifestMediaType(bytes) ?? MEDIA_TYPE_OCTET_STREAM;
    this.#blobs.set(digest, { bytes, mediaType });
    this.#changes.notify();
    return { digest, size: bytes.length, mediaType };
  }

  async tag(registry: string, repository: string, tag: string, digest: Digest): Promise<void> {
    if (
      this.#blobs.get(digest)?.mediaType === undefined ||
      (await this.stat(digest))?.mediaType === MEDIA_TYPE_OCTET_STREAM
    ) {
      throw new ManifestUnknownError(`cannot tag ${digest}: no such manifest in the memory store`);
    }
    this.#tags.set(imageName(registry, repository, tag), digest);
    this.#changes.notify();
  }

  /** Test hook: drop content, as a garbage collector would. */
  delete(digest: Digest): void {
    this.#blobs.delete(digest);
    this.#changes.notify();
  }
}
