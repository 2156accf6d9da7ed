import type { Readable } from 'node:stream';
import { NameUnknownError, ShoalError, UpstreamUnavailableError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Digest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, MEDIA_TYPE_OCI_INDEX } from '../oci/media-types.js';
import { imageName } from '../oci/reference.js';
import type { UpstreamClient } from '../pullthrough/upstream.js';
import type { ContentStore } from '../store/store.js';
import { setBounded } from '../util/bounded-map.js';
import type { TagBook } from './tag-book.js';

/** The content-discovery half of the pull API: tag lists and referrers. */
export interface Discovery {
  /** Every tag of a repository, unsorted; throws NameUnknownError when none is known. */
  tags(registry: string, repository: string, signal?: AbortSignal): Promise<TagList>;
  /** The referrers index of `digest`, filtered by `artifactType` when given. */
  referrers(
    registry: string,
    repository: string,
    digest: Digest,
    artifactType: string | undefined,
    signal?: AbortSignal,
  ): Promise<ReferrersIndex>;
}

/** Who answered: the registry itself, or what this node knows (its store and the tag book). */
export type DiscoverySource = 'upstream' | 'local';

export interface TagList {
  tags: string[];
  source: DiscoverySource;
}

export interface ReferrersIndex {
  /** The OCI image index, as JSON bytes. */
  body: Buffer;
  /** True when the `artifactType` filter was applied (the `OCI-Filters-Applied` header). */
  filtered: boolean;
  source: DiscoverySource;
}

/** Pages of an upstream tag list followed through its `Link` headers, at most. */
export const MAX_TAG_PAGES = 20;
/** Bytes of one upstream tag list, all pages together, or of one referrers index, at most. */
export const MAX_LIST_BYTES = MAX_MANIFEST_BYTES;
/**
 * How long an upstream answer is reused, in ms. Any pod can ask for tag lists as fast as it likes; without
 * this, each request would be one more call on the node's registry quota.
 */
export const LIST_TTL_MS = 30_000;
/** Upstream answers kept at most (the least recently fetched go first). */
export const MAX_CACHED_LISTS = 1000;

interface OciIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Array<Record<string, unknown>>;
}

/**
 * Answers tag lists and referrers. With pull-through on, the registry is asked first: it is the authority
 * on both. Without it, or when it cannot be reached, tags come from what this node knows (its images, and
 * the tag book, which holds what it and its peers confirmed), and referrers from an empty index: the spec's
 * answer for "none known", which never sends a signature-checking client to a wrong artifact.
 */
export class RegistryDiscovery implements Discovery {
  readonly #store: ContentStore;
  readonly #book: TagBook;
  readonly #upstream: UpstreamClient | undefined;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  /** Upstream answers by kind, registry, repository and digest: shared while in flight, then for the TTL. */
  readonly #cache = new Map<string, { at: number; answer: Promise<unknown> }>();
  /**
   * What the store holds, listed once until it changes: a store lists by reading its whole index (the
   * embedded one reads a directory), and any pod may ask for tag lists as often as it likes.
   */
  #keys: Promise<Set<string>> | undefined;

  constructor(deps: {
    store: ContentStore;
    book: TagBook;
    upstream?: UpstreamClient;
    log?: Logger;
    now?: () => number;
  }) {
    this.#store = deps.store;
    this.#book = deps.book;
    this.#upstream = deps.upstream;
    this.#log = deps.log;
    this.#now = deps.now ?? Date.now;
    this.#store.onChange(() => {
      this.#keys = undefined;
    });
  }

  #heldKeys(): Promise<Set<string>> {
    const keys = this.#keys ?? this.#store.listKeys();
    this.#keys = keys;
    keys.catch(() => {
      if (this.#keys === keys) this.#keys = undefined;
    });
    return keys;
  }

  /** One upstream call per key at a time, its answer reused for LIST_TTL_MS; a failure is never kept. */
  #shared<T>(key: string, fetch: () => Promise<T>): Promise<T> {
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached !== undefined && now - cached.at < LIST_TTL_MS) return cached.answer as Promise<T>;
    const answer = fetch();
    setBounded(this.#cache, key, { at: now, answer }, MAX_CACHED_LISTS);
    answer.catch(() => {
      if (this.#cache.get(key)?.answer === answer) this.#cache.delete(key);
    });
    return answer;
  }

  async tags(registry: string, repository: string, signal?: AbortSignal): Promise<TagList> {
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      try {
        const tags = await this.#shared(`tags\n${registry}\n${repository}`, () =>
          this.#upstreamTags(upstream, registry, repository, signal),
        );
        return { tags, source: 'upstream' };
      } catch (err) {
        if (err instanceof NameUnknownError) throw err;
        this.#log?.info({ err, registry, repository }, 'tag list from what this node knows');
      }
    }
    const prefix = imageName(registry, repository, '');
    const tags = new Set<string>();
    for (const key of await this.#heldKeys()) if (key.startsWith(prefix)) tags.add(key.slice(prefix.length));
    for (const [name] of this.#book.entries()) {
      // Only tags still served: not invalidated, not past --tag-max-age.
      if (name.startsWith(prefix) && this.#book.get(name) !== undefined) tags.add(name.slice(prefix.length));
    }
    if (tags.size === 0) throw new NameUnknownError(`no tags of ${registry}/${repository} are known here`);
    return { tags: [...tags], source: 'local' };
  }

  async referrers(
    registry: string,
    repository: string,
    digest: Digest,
    artifactType: string | undefined,
    signal?: AbortSignal,
  ): Promise<ReferrersIndex> {
    let index: OciIndex = { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] };
    let source: DiscoverySource = 'local';
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      try {
        index = await this.#shared(`referrers\n${registry}\n${repository}\n${digest}`, async () => {
          const response = await upstream.request(
            { registry, repository, kind: 'referrers', reference: digest },
            { method: 'GET', accept: MEDIA_TYPE_OCI_INDEX, signal },
          );
          return parseIndex(await readCapped(response.body, MAX_LIST_BYTES));
        });
        source = 'upstream';
      } catch (err) {
        if (!(err instanceof ShoalError)) throw err;
        this.#log?.info({ err, registry, repository, digest }, 'no referrers from upstream; an empty index');
      }
    }
    if (artifactType !== undefined) {
      index = { ...index, manifests: index.manifests.filter((entry) => entry.artifactType === artifactType) };
    }
    return { body: Buffer.from(JSON.stringify(index)), filtered: artifactType !== undefined, source };
  }

  async #upstreamTags(
    upstream: UpstreamClient,
    registry: string,
    repository: string,
    signal: AbortSignal | undefined,
  ): Promise<string[]> {
    const tags: string[] = [];
    let query = '';
    let budget = MAX_LIST_BYTES;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const response = await upstream.request(
        { registry, repository, kind: 'tags', reference: 'list', query },
        { method: 'GET', accept: 'application/json', signal },
      );
      const link = String(response.headers.link ?? '');
      const body = await readCapped(response.body, budget);
      budget -= body.length;
      const doc = JSON.parse(body.toString('utf8')) as {
        tags?: unknown;
      };
      if (doc.tags !== null && doc.tags !== undefined && !Array.isArray(doc.tags)) {
        throw new UpstreamUnavailableError(`${registry} sent a tag list without a list`);
      }
      for (const tag of (doc.tags ?? []) as unknown[]) if (typeof tag === 'string') tags.push(tag);
      // `Link: </v2/<name>/tags/list?n=100&last=x>; rel="next"`: only the query is taken from it.
      const next = /<[^>?]*\?([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
      if (next === undefined) return tags;
      query = next;
    }
    this.#log?.warn(
      { registry, repository, pages: MAX_TAG_PAGES },
      'upstream tag list cut at its page bound',
    );
    return tags;
  }
}

/** The body of `source`, up to `max` bytes; more is an unavailable upstream, never a truncated answer. */
async function readCapped(source: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of source) {
      length += (chunk as Buffer).length;
      if (length > max) throw new UpstreamUnavailableError(`an upstream answer was over ${max} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    source.destroy();
    if (err instanceof ShoalError) throw err;
    throw new UpstreamUnavailableError('an upstream answer broke off', { cause: err });
  }
  return Buffer.concat(chunks);
}

function parseIndex(bytes: Buffer): OciIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new UpstreamUnavailableError('upstream referrers are not JSON', { cause });
  }
  const manifests = (doc as { manifests?: unknown } | null)?.manifests;
  if (!Array.isArray(manifests)) throw new UpstreamUnavailableError('upstream referrers are not an index');
  const entries = manifests.filter(
    (entry): entry is Record<string, unknown> => typeof entry === 'object' && entry !== null,
  );
  return { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: entries };
}
