import type { Digest } from '../oci/digest.js';
import { subscribeAll } from '../util/changes.js';
import type { Content, ContentOrigin, ContentStore } from './store.js';

/**
 * Several stores seen as one, first store first: containerd's content plus the pull-through cache kept
 * beside it, so both are served to peers and advertised. A view only: start and stop belong to the stores.
 */
export class UnionStore implements ContentStore {
  readonly kind: string;
  readonly #stores: readonly ContentStore[];

  constructor(stores: readonly ContentStore[]) {
    this.#stores = stores;
    this.kind = stores.map((store) => store.kind).join('+');
  }

  async resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined> {
    for (const store of this.#stores) {
      const found = await store.resolve(registry, repository, tag, origin);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  async stat(digest: Digest, origin?: ContentOrigin): Promise<Content | undefined> {
    for (const store of this.#stores) {
      const found = await store.stat(digest, origin);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  async listKeys(): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const store of this.#stores) for (const key of await store.listKeys()) keys.add(key);
    return keys;
  }

  /** Deletes `digest` from every store that can delete (a digest may be held in more than one). */
  async remove(digest: Digest): Promise<void> {
    await Promise.all(this.#stores.map((store) => store.remove?.(digest)));
  }

  onChange(listener: () => void): () => void {
    return subscribeAll(listener, this.#stores);
  }

  async ready(): Promise<boolean> {
    return (await Promise.all(this.#stores.map((store) => store.ready()))).every(Boolean);
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}
