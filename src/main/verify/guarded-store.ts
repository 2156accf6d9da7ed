import { BlobUnknownError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { Content, ContentOrigin, ContentStore } from '../store/store.js';
import { ChangeNotifier, subscribeAll } from '../util/changes.js';

/**
 * The local store as this node serves and advertises it: content found corrupt (by a scrub, or a re-check
 * after a peer's report) is condemned, so it is neither served nor advertised, and deleted where the store
 * is shoal's own. Content that checks out again later (containerd fetched it anew) is pardoned.
 */
export class GuardedStore implements ContentStore {
  readonly kind: string;
  readonly #store: ContentStore;
  readonly #condemned = new Set<Digest>();
  readonly #changes = new ChangeNotifier();

  constructor(deps: { store: ContentStore }) {
    this.#store = deps.store;
    this.kind = deps.store.kind;
  }

  /** The store underneath, which still shows condemned content (for re-checks). */
  get inner(): ContentStore {
    return this.#store;
  }

  /** Stops serving and advertising `digest`; deletes it when the store can. */
  async condemn(digest: Digest): Promise<void> {
    this.#condemned.add(digest);
    this.#changes.notify();
    await this.#store.remove?.(digest);
  }

  pardon(digest: Digest): void {
    if (this.#condemned.delete(digest)) this.#changes.notify();
  }

  async resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined> {
    return this.#guard(await this.#store.resolve(registry, repository, tag, origin));
  }

  async stat(digest: Digest): Promise<Content | undefined> {
    return this.#condemned.has(digest) ? undefined : this.#guard(await this.#store.stat(digest));
  }

  /** Content as served: not at all once condemned, even when it was found before the verdict. */
  #guard(content: Content | undefined): Content | undefined {
    if (content === undefined || this.#condemned.has(content.digest)) return undefined;
    const { digest } = content;
    const failed = () => new BlobUnknownError(`blob ${digest} failed its digest check here`);
    return {
      ...content,
      open: (range) => (this.#condemned.has(digest) ? Promise.reject(failed()) : content.open(range)),
      localPath: async () => (this.#condemned.has(digest) ? undefined : content.localPath?.()),
    };
  }

  async listKeys(): Promise<Set<string>> {
    const keys = await this.#store.listKeys();
    for (const digest of this.#condemned) keys.delete(digest);
    return keys;
  }

  onChange(listener: () => void): () => void {
    return subscribeAll(listener, [this.#changes, this.#store]);
  }

  ready(): Promise<boolean> {
    return this.#store.ready();
  }
  start(): Promise<void> {
    return this.#store.start();
  }
  stop(): Promise<void> {
    return this.#store.stop();
  }
}
