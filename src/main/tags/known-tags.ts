import type { Digest } from '../oci/digest.js';
import { isManifestMediaType } from '../oci/media-types.js';
import { imageName } from '../oci/reference.js';
import { PassThroughStore } from '../store/pass-through.js';
import type { Content, ContentOrigin, ContentStore } from '../store/store.js';
import { subscribeAll } from '../util/changes.js';
import type { TagBook } from './tag-book.js';

/** A store seen through the tag book: tags resolve through it, and its changes are the store's too. */
abstract class StoreView extends PassThroughStore {
  protected readonly book: TagBook;

  constructor(deps: { inner: ContentStore; book: TagBook }) {
    super(deps.inner);
    this.book = deps.book;
  }

  abstract override resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined>;

  override onChange(listener: () => void): () => void {
    return subscribeAll(listener, [this.book, this.inner]);
  }

  /** `digest` described as a manifest a tag named at `confirmedAt`, if the store can see it. */
  protected async manifest(
    digest: Digest,
    confirmedAt: number,
    origin?: ContentOrigin,
  ): Promise<Content | undefined> {
    const held = await this.inner.stat(digest, origin).catch(() => undefined);
    return held !== undefined && isManifestMediaType(held.mediaType) ? { ...held, confirmedAt } : undefined;
  }
}

/**
 * What this node holds, with the tags it knows: the tag book's mappings whose manifest is here resolve
 * and are advertised, and tags the store itself knows (containerd's images, imported tags) stop resolving
 * once invalidated or older than `--tag-max-age`. Peers and the advertiser see the node through this.
 */
export class BookedStore extends StoreView {
  async resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined> {
    const name = imageName(registry, repository, tag);
    const record = this.book.get(name);
    const booked = record === undefined ? undefined : await this.manifest(record.digest, record.confirmedAt);
    if (booked !== undefined) return booked;
    const held = await this.inner.resolve(registry, repository, tag, origin);
    return held !== undefined && this.book.admits(name, held.confirmedAt) ? held : undefined;
  }

  override async listKeys(): Promise<Set<string>> {
    const keys = await this.inner.listKeys();
    for (const key of keys) {
      // A tag the store itself knows stops being advertised once invalidated (until confirmed again).
      if (!key.startsWith('sha256:') && !this.book.admits(key, undefined)) keys.delete(key);
    }
    const now = Date.now();
    for (const [name, record] of this.book.entries()) {
      if (keys.has(record.digest) && this.book.admits(name, record.confirmedAt, now)) keys.add(name);
    }
    return keys;
  }
}

/**
 * The node as its own clients see it, for tags: every answer that carries a confirmation time is held to
 * `--tag-max-age` and to invalidations, and remembered in the tag book (the registry's answer, or a peer's
 * with the time the registry confirmed it to that peer). When nothing answers (the registry is down and no
 * peer knows the tag) the book's last-known-good mapping is used, wherever its manifest is held.
 */
export class KnownTagsStore extends StoreView {
  async resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined> {
    const name = imageName(registry, repository, tag);
    // A registry that says the tag does not exist throws here: a remembered mapping must not outlive that.
    const answer = await this.inner.resolve(registry, repository, tag, origin);
    if (answer !== undefined && this.book.admits(name, answer.confirmedAt)) {
      if (answer.confirmedAt !== undefined) this.book.confirm(name, answer.digest, answer.confirmedAt);
      return answer;
    }
    const record = this.book.get(name);
    if (record === undefined || record.digest === answer?.digest) return undefined;
    return this.manifest(
      record.digest,
      record.confirmedAt,
      origin ?? { registry, repository, kind: 'manifests' },
    );
  }
}
