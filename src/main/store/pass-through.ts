import type { Digest } from '../oci/digest.js';
import type { ByteRange } from '../oci/range.js';
import type { BlobReader, ContentOrigin, ContentStore, Descriptor } from './store.js';

/**
 * A store layered on another: every call passes to `inner` unless the layer overrides it, so a layer
 * states only what it changes. `remove` is never passed on: only a store that is shoal's own deletes.
 */
export class PassThroughStore implements ContentStore {
  readonly kind: string;
  protected readonly inner: ContentStore;

  constructor(inner: ContentStore, kind: string = inner.kind) {
    this.inner = inner;
    this.kind = kind;
  }

  resolve(registry: string, repository: string, tag: string): Promise<Descriptor | undefined> {
    return this.inner.resolve(registry, repository, tag);
  }
  stat(digest: Digest, origin?: ContentOrigin): Promise<Descriptor | undefined> {
    return this.inner.stat(digest, origin);
  }
  open(digest: Digest, range: ByteRange, origin?: ContentOrigin): Promise<BlobReader> {
    return this.inner.open(digest, range, origin);
  }
  listKeys(): Promise<Set<string>> {
    return this.inner.listKeys();
  }
  onChange(listener: () => void): () => void {
    return this.inner.onChange(listener);
  }
  localPath(digest: Digest): Promise<string | undefined> {
    return this.inner.localPath?.(digest) ?? Promise.resolve(undefined);
  }
  ready(): Promise<boolean> {
    return this.inner.ready();
  }
  start(): Promise<void> {
    return this.inner.start();
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
}
