import { BlobUnknownError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { isManifestMediaType, MEDIA_TYPE_OCTET_STREAM } from '../oci/media-types.js';
import type { ByteRange } from '../oci/range.js';
import type { Provider, Router } from '../routing/router.js';
import type { BlobReader, ContentStore, Descriptor } from '../store/store.js';
import { type Attempt, hedgedRace } from './hedge.js';
import { LatencyTracker } from './latency.js';
import { LookupCache } from './lookup-cache.js';
import { type PeerResponse, requestPeer } from './peer-client.js';
import { PeerBlobReader, type PeerBody } from './peer-reader.js';

export interface MirroringStoreInit {
  /** Longest wait for a first provider; default 20 ms (`--mirror-resolve-timeout`). */
  resolveTimeoutMs?: number;
  /** Most peers tried per request; default 3 (`--mirror-resolve-retries`). */
  maxAttempts?: number;
  /** Hard cap on a peer's headers, and on HEAD and manifest requests; default 3000 ms. */
  peerTimeoutMs?: number;
  /** Longest silence inside a peer's body before moving to another peer; default 5000 ms. */
  readTimeoutMs?: number;
  /** How long a peer that failed is skipped; default 10 s. */
  quarantineMs?: number;
}

// Peers serve digests whatever the repository; this name only satisfies the path grammar.
const PEER_REPOSITORY = 'shoal/peer';
const HEDGE_MIN_MS = 10;
const HEDGE_MAX_MS = 1000;
const REMOTE_DESCRIPTORS = 4096;

/**
 * Serves what the local store holds, and on a miss finds peers that hold it and streams from them:
 * hedged across providers, resumed on another peer mid-body. Peers are asked with the mirrored header, so
 * they answer from their own store only.
 */
export class MirroringStore implements ContentStore {
  readonly kind: string;
  readonly #local: ContentStore;
  readonly #router: Router;
  readonly #lookups: LookupCache;
  readonly #latency = new LatencyTracker();
  readonly #quarantine = new Map<string, number>();
  /**
   * Descriptors peers gave for digests (content is immutable, so they never go stale): the handler stats
   * a digest and then opens it, and the open must not ask the peers the same question again.
   */
  readonly #remote = new Map<Digest, Descriptor>();
  readonly #resolveTimeoutMs: number;
  readonly #maxAttempts: number;
  readonly #peerTimeoutMs: number;
  readonly #readTimeoutMs: number;
  readonly #quarantineMs: number;

  constructor(deps: { local: ContentStore; router: Router }, init: MirroringStoreInit = {}) {
    this.#local = deps.local;
    this.#router = deps.router;
    this.#lookups = new LookupCache({ router: deps.router });
    this.kind = `${deps.local.kind}+peers`;
    this.#resolveTimeoutMs = init.resolveTimeoutMs ?? 20;
    this.#maxAttempts = init.maxAttempts ?? 3;
    this.#peerTimeoutMs = init.peerTimeoutMs ?? 3000;
    this.#readTimeoutMs = init.readTimeoutMs ?? 5000;
    this.#quarantineMs = init.quarantineMs ?? 10_000;
  }

  start(): Promise<void> {
    return this.#local.start();
  }
  stop(): Promise<void> {
    return this.#local.stop();
  }
  /** Only what this node holds itself is ever advertised. */
  listKeys(): Promise<Set<string>> {
    return this.#local.listKeys();
  }
  onChange(listener: () => void): () => void {
    return this.#local.onChange(listener);
  }
  async ready(): Promise<boolean> {
    return (await this.#local.ready()) && this.#router.ready();
  }

  async resolve(registry: string, repository: string, tag: string): Promise<Descriptor | undefined> {
    const local = await this.#local.resolve(registry, repository, tag);
    if (local !== undefined) return local;
    const path = `/v2/${repository}/manifests/${tag}?ns=${encodeURIComponent(registry)}`;
    return this.#describe(`${registry}/${repository}:${tag}`, [path]);
  }

  async stat(digest: Digest): Promise<Descriptor | undefined> {
    const local = await this.#local.stat(digest);
    if (local !== undefined) return local;
    // A peer serves a manifest only from /manifests/, so ask for a blob first, then for a manifest.
    const remote = await this.#describe(digest, [
      `/v2/${PEER_REPOSITORY}/blobs/${digest}`,
      `/v2/${PEER_REPOSITORY}/manifests/${digest}`,
    ]);
    if (remote?.digest === digest) this.#remember(remote);
    return remote;
  }

  async open(digest: Digest, range: ByteRange): Promise<BlobReader> {
    try {
      // The handler has just stat'ed this digest; a local hit is opened without asking again.
      return await this.#local.open(digest, range);
    } catch (err) {
      if (!(err instanceof BlobUnknownError)) throw err;
    }
    const kind = this.#remote.get(digest) ?? (await this.stat(digest));
    if (kind === undefined) throw new BlobUnknownError(`no peer holds ${digest}`);
    const path = isManifestMediaType(kind.mediaType)
      ? `/v2/${PEER_REPOSITORY}/manifests/${digest}`
      : `/v2/${PEER_REPOSITORY}/blobs/${digest}`;
    const fetchFrom = async (offset: number, failed?: string): Promise<PeerBody | undefined> => {
      if (failed !== undefined) {
        this.#quarantine.set(failed, Date.now() + this.#quarantineMs);
        // The cached providers may hold only the peer that just died: resume from a fresh lookup.
        this.#lookups.forget(digest);
      }
      const won = await this.#race(digest, (provider, signal) =>
        requestPeer(provider.registry, path, {
          method: 'GET',
          range: offset === 0 && range.end === kind.size - 1 ? undefined : `bytes=${offset}-${range.end}`,
          signal,
          timeoutMs: this.#peerTimeoutMs,
        }),
      );
      return won === undefined ? undefined : { body: won.result.body, peer: won.provider.id };
    };
    const first = await fetchFrom(range.start);
    if (first === undefined) throw new BlobUnknownError(`no peer could serve ${digest}`);
    return new PeerBlobReader(first, range, fetchFrom, this.#readTimeoutMs);
  }

  #remember(descriptor: Descriptor): void {
    if (this.#remote.size >= REMOTE_DESCRIPTORS) {
      const oldest = this.#remote.keys().next().value;
      if (oldest !== undefined) this.#remote.delete(oldest);
    }
    this.#remote.set(descriptor.digest, descriptor);
  }

  /** HEADs `paths` in order on racing providers of `key`; the first answer describes the content. */
  async #describe(key: string, paths: string[]): Promise<Descriptor | undefined> {
    const won = await this.#race(key, async (provider, signal) => {
      let lastError: unknown;
      for (const path of paths) {
        try {
          return await requestPeer(provider.registry, path, {
            method: 'HEAD',
            signal,
            timeoutMs: this.#peerTimeoutMs,
          });
        } catch (err) {
          lastError = err;
        }
      }
      throw lastError;
    });
    if (won === undefined) return undefined;
    const response = won.result;
    const digest = response.headers['docker-content-digest'];
    const size = Number(response.headers['content-length']);
    const contentType = response.headers['content-type'];
    if (typeof digest !== 'string' || !Number.isSafeInteger(size)) return undefined;
    const mediaType = isManifestMediaType(contentType) ? contentType : MEDIA_TYPE_OCTET_STREAM;
    return { digest: digest as Digest, size, mediaType };
  }

  /** Races providers of `key`; failed peers are quarantined, time to headers feeds the hedge delay. */
  async #race(
    key: string,
    attempt: (provider: Provider, signal: AbortSignal) => Promise<PeerResponse>,
  ): Promise<Attempt<PeerResponse> | undefined> {
    const lookup = new AbortController();
    const timed = async (provider: Provider, signal: AbortSignal): Promise<PeerResponse> => {
      const started = performance.now();
      try {
        const response = await attempt(provider, signal);
        this.#latency.record(performance.now() - started);
        return response;
      } catch (err) {
        if (!signal.aborted) this.#quarantine.set(provider.id, Date.now() + this.#quarantineMs);
        throw err;
      }
    };
    try {
      const won = await hedgedRace(this.#live(this.#lookups.lookup(key, lookup.signal)), timed, {
        maxAttempts: this.#maxAttempts,
        hedgeDelayMs: Math.min(HEDGE_MAX_MS, Math.max(HEDGE_MIN_MS, this.#latency.quantile(0.9, 100))),
        firstProviderTimeoutMs: this.#resolveTimeoutMs,
        signal: AbortSignal.timeout(this.#peerTimeoutMs),
      });
      // Every provider failed: the cached answer is stale, so the next request asks the DHT again.
      if (won === undefined) this.#lookups.forget(key);
      return won;
    } finally {
      lookup.abort();
    }
  }

  async *#live(providers: AsyncIterable<Provider>): AsyncIterable<Provider> {
    for await (const provider of providers) {
      if ((this.#quarantine.get(provider.id) ?? 0) <= Date.now()) yield provider;
    }
  }
}
