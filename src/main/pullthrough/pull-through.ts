import { BlobUnknownError, ManifestUnknownError, UpstreamUnavailableError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { NO_COUNTER } from '../metrics/families.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Digest } from '../oci/digest.js';
import { isManifestMediaType, MANIFEST_ACCEPT, MEDIA_TYPE_OCTET_STREAM } from '../oci/media-types.js';
import { Membership } from '../peer/membership.js';
import { PeerAuth } from '../peer/peer-auth.js';
import type { Router } from '../routing/router.js';
import type { EmbeddedStore } from '../store/embedded.js';
import { PassThroughStore } from '../store/pass-through.js';
import {
  type Content,
  type ContentOrigin,
  type ContentSource,
  type ContentStore,
  noteWhy,
} from '../store/store.js';
import type { DigestVerifier } from '../verify/verifier.js';
import type { OwnerElection } from './owner.js';
import { Owners } from './owners.js';
import { Spool } from './spool.js';
import type { UpstreamClient } from './upstream.js';
import { describeUpstream, resumeUpstream } from './upstream-calls.js';

/** What pull-through counts. */
export type PullThroughMetrics = Pick<
  Metrics,
  'pullThroughDownloads' | 'pullThroughCoalesced' | 'ownerFetches' | 'upstreamBytes'
>;

const UNCOUNTED: PullThroughMetrics = {
  pullThroughDownloads: NO_COUNTER,
  pullThroughCoalesced: NO_COUNTER,
  ownerFetches: NO_COUNTER,
  upstreamBytes: NO_COUNTER,
};

/** A download under way, with the media type its source gave it. */
interface Download {
  spool: Spool;
  mediaType: string;
  /** The elected owner it streams from; undefined: straight from upstream. */
  owner: string | undefined;
}

export interface PullThroughInit {
  /** Longest wait for the owner's headers (it may be fetching from upstream itself), in ms; default 15 s. */
  ownerTimeoutMs?: number;
  /** Longest wait for upstream's answer to a tag before the cached and peer answers are used; default 2 s. */
  tagTimeoutMs?: number;
  /** Longest silence of an upstream download, or wait of a reader for new bytes, in ms; default 30 s. */
  stallMs?: number;
  /** The slowest a download may run, in bytes per second over each `stallMs`; default 0 (no floor). */
  minBytesPerSecond?: number;
}

/**
 * With `--upstream-fallback`: what neither this node nor its peers hold is fetched from the registry
 * itself. Concurrent requests for one digest share one download (a Spool) that they all read as it grows;
 * the bytes are checked in the digest workers and committed to the embedded cache, which serves them from
 * then on. Tags ask upstream first, so a moved tag is seen at once, and fall back to what the node and its
 * peers know when upstream does not answer (the tag book, above this store, remembers upstream's answers).
 */
export class PullThroughStore extends PassThroughStore {
  readonly #cache: EmbeddedStore;
  /** How the cache is read: through the node's guard, so condemned content is never served from here. */
  readonly #held: ContentStore;
  readonly #upstream: UpstreamClient;
  readonly #verifier: DigestVerifier;
  readonly #log: Logger | undefined;
  readonly #metrics: PullThroughMetrics;
  /** With P2P on: the nodes elected to fetch each digest. */
  readonly #owners: Owners | undefined;
  readonly #tagTimeoutMs: number;
  readonly #stallMs: number;
  readonly #minRate: number;
  /** Downloads under way, by digest: the single flight every concurrent request joins. */
  readonly #spools = new Map<Digest, Promise<Download>>();

  constructor(
    deps: {
      /** What the node holds and its peers: it must include `cache`, which is only written here. */
      inner: ContentStore;
      cache: EmbeddedStore;
      /** The guarded view that holds `cache`; default the cache itself (a node without a guard). */
      held?: ContentStore;
      upstream: UpstreamClient;
      verifier: DigestVerifier;
      /** With P2P on: who else is in the cluster, to pick the one node that fetches each digest. */
      router?: Router | undefined;
      /** The node's view of its peers' health (shared with the peer fetch); default: one of its own. */
      membership?: Membership | undefined;
      election?: OwnerElection | undefined;
      /** Signs requests to owners; default: signed with the router's identity. */
      auth?: PeerAuth | undefined;
      log?: Logger;
      metrics?: PullThroughMetrics;
    },
    init: PullThroughInit = {},
  ) {
    super(deps.inner, `${deps.inner.kind}+upstream`);
    this.#cache = deps.cache;
    this.#held = deps.held ?? deps.cache;
    this.#upstream = deps.upstream;
    this.#verifier = deps.verifier;
    this.#log = deps.log;
    this.#metrics = deps.metrics ?? UNCOUNTED;
    this.#owners =
      deps.router === undefined || deps.election === undefined
        ? undefined
        : new Owners(
            {
              router: deps.router,
              membership: deps.membership ?? new Membership({ router: deps.router }),
              election: deps.election,
              auth: deps.auth ?? new PeerAuth({ router: deps.router }),
              log: deps.log,
              fetches: this.#metrics.ownerFetches,
            },
            { ownerTimeoutMs: init.ownerTimeoutMs ?? 15_000 },
          );
    this.#tagTimeoutMs = init.tagTimeoutMs ?? 2000;
    this.#stallMs = init.stallMs ?? 30_000;
    this.#minRate = init.minBytesPerSecond ?? 0;
  }

  /**
   * Upstream is the authority for tags: its answer (confirmed now) wins, and its "no such tag" is final.
   * Only when it does not answer do the node's and its peers' last-known-good mappings resolve the tag.
   */
  override async resolve(
    registry: string,
    repository: string,
    tag: string,
    client?: ContentOrigin,
  ): Promise<Content | undefined> {
    const origin: ContentOrigin = { registry, repository, kind: 'manifests' };
    let named: { digest: Digest; mediaType: string };
    try {
      named = await describeUpstream(this.#upstream, origin, tag, AbortSignal.timeout(this.#tagTimeoutMs));
    } catch (err) {
      if (err instanceof ManifestUnknownError) throw err;
      noteWhy(client, `upstream did not resolve the tag (${(err as Error).message}); using what is known`);
      return this.inner.resolve(registry, repository, tag, client);
    }
    // The HEAD names the digest; the size comes from bytes that are checked (held, or being fetched).
    const held = await this.stat(named.digest, origin);
    if (held === undefined) return undefined;
    const mediaType = isManifestMediaType(held.mediaType) ? held.mediaType : named.mediaType;
    return { ...held, mediaType, confirmedAt: Date.now() };
  }

  /**
   * What is held, else what upstream holds, described by the download that fetches it: its size is the one
   * the body is held to, byte for byte and by digest, never an unchecked HEAD's (an upstream that answered
   * HEAD with a smaller size got clients a complete-looking response of the wrong bytes).
   */
  override async stat(digest: Digest, origin?: ContentOrigin): Promise<Content | undefined> {
    const held = await this.inner.stat(digest, origin);
    // A client that left starts no download: nobody would read it.
    if (held !== undefined || origin === undefined || origin.signal?.aborted === true) return held;
    // The download may have been committed (and its spool forgotten) while the peers were asked. A spool is
    // forgotten only after it is committed, so with none under way the cache is looked at once more: without
    // this, a config asked for during its download was fetched from upstream a second time.
    if (!this.#spools.has(digest)) {
      const cached = await this.#held.stat(digest);
      if (cached !== undefined) return cached;
    }
    try {
      const coalesced = this.#spools.has(digest);
      const { spool, mediaType, owner } = await this.#spool(digest, origin);
      if (coalesced) this.#metrics.pullThroughCoalesced.inc({});
      const source: ContentSource =
        owner === undefined ? { kind: 'upstream', coalesced } : { kind: 'owner', peer: owner, coalesced };
      return { digest, size: spool.size, mediaType, source, open: (range) => spool.reader(range) };
    } catch (err) {
      if (err instanceof BlobUnknownError || err instanceof ManifestUnknownError) return undefined;
      return this.#secondChance(err, origin, () => this.inner.stat(digest, origin));
    }
  }

  /**
   * Upstream is down: the peers get a second chance. A first peer lookup that found nothing within the
   * resolve timeout goes on in the background while upstream is tried (and retried), so a node that has
   * just joined, or whose DHT is slow, still finds the peers that hold the content instead of failing.
   */
  async #secondChance<T>(
    err: unknown,
    origin: ContentOrigin,
    again: () => Promise<T | undefined>,
  ): Promise<T> {
    if (!(err instanceof UpstreamUnavailableError)) throw err;
    noteWhy(origin, `upstream: ${err.message}`);
    const found = await again().catch(() => undefined);
    if (found === undefined) throw err;
    this.#log?.info({ reason: err.message }, 'upstream is down; served from a peer found on a second look');
    return found;
  }

  /** Joins the download of `digest` under way, or starts it. */
  #spool(digest: Digest, origin: ContentOrigin): Promise<Download> {
    const running = this.#spools.get(digest);
    if (running !== undefined) return running;
    const starting = this.#startSpool(digest, origin);
    this.#spools.set(digest, starting);
    const forget = (): void => {
      if (this.#spools.get(digest) === starting) this.#spools.delete(digest);
    };
    starting.then(({ spool }) => spool.done.then(forget, forget), forget);
    return starting;
  }

  async #startSpool(digest: Digest, origin: ContentOrigin): Promise<Download> {
    const fromOwner = origin.forwarded === true ? undefined : await this.#owners?.ask(digest, origin);
    const response =
      fromOwner?.response ??
      (await this.#upstream.request(
        { ...origin, reference: digest },
        { method: 'GET', accept: origin.kind === 'manifests' ? MANIFEST_ACCEPT : '*/*' },
      ));
    const size = Number(response.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) {
      response.body.destroy();
      throw new BlobUnknownError(`${digest} came without a length`);
    }
    // No room to keep it: 404 before the first byte, so containerd fetches it from the registry itself.
    const room = await this.#cache.room.take(size).catch((err: unknown) => {
      response.body.destroy();
      this.#log?.warn({ err, digest, registry: origin.registry, size }, 'no room to pull through');
      throw err;
    });
    this.#log?.info(
      { digest, registry: origin.registry, size, from: fromOwner?.owner ?? 'upstream' },
      'pulling through',
    );
    this.#metrics.pullThroughDownloads.inc({ from: fromOwner === undefined ? 'upstream' : 'owner' });
    const spool = new Spool(
      { verifier: this.#verifier },
      {
        digest,
        size,
        path: this.#cache.ingestPath(digest),
        source: response.body,
        // Straight from upstream (or its CDN), a break resumes there by Range. An owner that breaks off is
        // passed over instead, and the next request fetches anew.
        ...(fromOwner === undefined
          ? {
              resume: (offset: number) =>
                resumeUpstream(this.#upstream, this.#log, { digest, origin, offset }),
            }
          : {}),
      },
      async (path) => {
        await this.#cache.adopt(path, digest);
        return (await (await this.#cache.stat(digest))?.localPath?.()) ?? path;
      },
      { stallMs: this.#stallMs, minBytesPerSecond: this.#minRate },
    );
    if (fromOwner === undefined) {
      const counted = (): void =>
        this.#metrics.upstreamBytes.inc({ registry: origin.registry }, spool.written);
      spool.done.then(counted, counted);
    }
    room.until(spool.done);
    // An owner that broke off or sent bad bytes is passed over for a while: the retry fetches upstream.
    spool.done.catch((err: unknown) => {
      this.#log?.warn(
        { err, digest, from: fromOwner?.owner ?? 'upstream' },
        'a pull-through download failed; the next request starts another',
      );
      if (fromOwner !== undefined) this.#owners?.failed(fromOwner.owner);
    });
    const contentType = response.headers['content-type'];
    const mediaType =
      origin.kind === 'manifests' && isManifestMediaType(contentType) ? contentType : MEDIA_TYPE_OCTET_STREAM;
    return { spool, mediaType, owner: fromOwner?.owner };
  }
}
