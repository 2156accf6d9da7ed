import type { Digest } from '../oci/digest.js';
import type { Content, ContentOrigin, ContentStore } from './store.js';

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

  resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined> {
    return this.inner.resolve(registry, repository, tag, origin);
  }
  stat(digest: Digest, origin?: ContentOrigin): Promise<Content | undefined> {
    return this.inner.stat(digest, origin);
  }
  listKeys(): Promise<Set<string>> {
    return this.inner.listKeys();
  }
  prepare(digests: readonly Digest[], origin: ContentOrigin): void {
    this.inner.prepare?.(digests, origin);
  }
  onChange(listener: () => void): () => void {
    return this.inner.onChange(listener);
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
