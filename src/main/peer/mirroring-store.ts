import { BlobUnknownError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { Metrics } from '../metrics/metrics.js';
import type { Digest } from '../oci/digest.js';
import { isManifestMediaType } from '../oci/media-types.js';
import type { ByteRange } from '../oci/range.js';
import type { Provider, Router } from '../routing/router.js';
import { PassThroughStore } from '../store/pass-through.js';
import type { BlobReader, Content, ContentOrigin, ContentStore, Descriptor } from '../store/store.js';
import type { DigestVerifier, Verdict } from '../verify/verifier.js';
import { VerifyingReader } from '../verify/verifying-reader.js';
import { type Attempt, hedgedRace } from './hedge.js';
import { LatencyTracker } from './latency.js';
import { LookupCache } from './lookup-cache.js';
import { Membership } from './membership.js';
import { PeerAuth } from './peer-auth.js';
import { getPeerBody } from './peer-body.js';
import { PeerRequestError, requestPeer } from './peer-client.js';
import { PeerBlobReader, type PeerStream } from './peer-reader.js';
import { describedBy, peerGet, peerPath } from './protocol.js';
import { ResolveWait } from './resolve-wait.js';

export interface MirroringStoreInit {
  /** Shortest wait for a first provider; default 20 ms (`--mirror-resolve-timeout`). */
  resolveTimeoutMs?: number;
  /** Longest wait for a first provider, also used until enough lookups were seen; default 500 ms (`--mirror-resolve-timeout-max`). */
  resolveTimeoutMaxMs?: number;
  /** Age after which a key's providers are looked up again in the background; default 5000 ms (`--mirror-lookup-refresh`). */
  lookupRefreshMs?: number;
  /** Most peers tried per request; default 3 (`--mirror-resolve-retries`). */
  maxAttempts?: number;
  /** Hard cap on a peer's headers, and on HEAD and manifest requests; default 3000 ms. */
  peerTimeoutMs?: number;
  /** Longest silence inside a peer's body before moving to another peer; default 5000 ms. */
  readTimeoutMs?: number;
  /** Size of the buffer that hashes what follows a range; default 1 MiB. */
  chunkBytes?: number;
}

export interface MirroringStoreDeps {
  local: ContentStore;
  router: Router;
  /** Checks every peer byte; undefined trusts peers as they are (`--verify-remote=false`). */
  verifier?: DigestVerifier | undefined;
  /** Signs this node's requests to peers; default: signed with the router's identity. */
  auth?: PeerAuth;
  /** The node's view of its peers' health, shared with pull-through; default: one of its own. */
  membership?: Membership;
  metrics?: Metrics;
  log?: Logger;
}

const HEDGE_MIN_MS = 10;
const HEDGE_MAX_MS = 1000;

/**
 * Serves what the local store holds, and on a miss finds peers that hold it and streams from them:
 * hedged across providers, resumed on another peer mid-body. Peers are asked with the mirrored header, so
 * they answer from their own store only.
 *
 * With a verifier, peer content is always fetched whole and hashed in the digest workers as it streams: a
 * ranged request is cut from the whole body, and the last bytes go out only once the digest matches. A
 * peer whose bytes fail is quarantined, counted and told, so it re-checks its copy.
 */
export class MirroringStore extends PassThroughStore {
  readonly #router: Router;
  readonly #auth: PeerAuth;
  readonly #lookups: LookupCache;
  readonly #latency = new LatencyTracker();
  readonly #membership: Membership;
  readonly #resolveWait: ResolveWait;
  readonly #maxAttempts: number;
  readonly #peerTimeoutMs: number;
  readonly #readTimeoutMs: number;
  readonly #chunkBytes: number;
  readonly #verifier: DigestVerifier | undefined;
  readonly #metrics: Metrics;
  readonly #log: Logger | undefined;

  constructor(deps: MirroringStoreDeps, init: MirroringStoreInit = {}) {
    super(deps.local, `${deps.local.kind}+peers`);
    this.#router = deps.router;
    this.#auth = deps.auth ?? new PeerAuth({ router: deps.router });
    this.#verifier = deps.verifier;
    this.#metrics = deps.metrics ?? new Metrics();
    this.#membership =
      deps.membership ?? new Membership({ router: deps.router, setAside: this.#metrics.peerQuarantines });
    this.#log = deps.log;
    this.#resolveWait = new ResolveWait(
      { log: deps.log },
      { floorMs: init.resolveTimeoutMs ?? 20, capMs: init.resolveTimeoutMaxMs ?? 500 },
    );
    const lookups = this.#metrics.routerLookups;
    this.#lookups = new LookupCache(
      {
        router: deps.router,
        onLookup: (firstMs) => {
          lookups.inc({ result: firstMs === undefined ? 'none' : 'found' });
          this.#resolveWait.record(firstMs);
        },
      },
      { refreshMs: init.lookupRefreshMs ?? 5000 },
    );
    this.#metrics.watchResolveTimeout(() => this.#resolveWait.ms / 1000);
    this.#maxAttempts = init.maxAttempts ?? 3;
    this.#peerTimeoutMs = init.peerTimeoutMs ?? 3000;
    this.#readTimeoutMs = init.readTimeoutMs ?? 5000;
    this.#chunkBytes = init.chunkBytes ?? 1 << 20;
  }

  /** The local store answers, and the node can route, or has nobody to route to (a cluster of one). */
  override async ready(): Promise<boolean> {
    return (await this.inner.ready()) && (this.#router.ready() || this.#router.alone());
  }

  override async resolve(registry: string, repository: string, tag: string): Promise<Content | undefined> {
    const local = await this.inner.resolve(registry, repository, tag);
    if (local !== undefined) return local;
    const path = `/v2/${repository}/manifests/${tag}?ns=${encodeURIComponent(registry)}`;
    const remote = await this.#describe(`${registry}/${repository}:${tag}`, [path]);
    return remote === undefined
      ? undefined
      : this.#atPeers(remote, { registry, repository, kind: 'manifests' });
  }

  override async stat(digest: Digest, origin?: ContentOrigin): Promise<Content | undefined> {
    const local = await this.inner.stat(digest);
    if (local !== undefined) return local;
    // A peer serves a manifest only from /manifests/, so ask where the client asked first, then the other.
    const kinds =
      origin?.kind === 'manifests' ? (['manifests', 'blobs'] as const) : (['blobs', 'manifests'] as const);
    const remote = await this.#describe(
      digest,
      kinds.map((kind) => peerPath(kind, digest, origin)),
      origin?.signal,
    );
    // A peer that describes other content than was asked for is not believed.
    return remote?.digest === digest ? this.#atPeers(remote, origin) : undefined;
  }

  /** Content the peers described: opening it fetches from them, on behalf of the client in `origin`. */
  #atPeers(descriptor: Descriptor, origin: ContentOrigin | undefined): Content {
    return { ...descriptor, open: (range) => this.#fetch(descriptor, range, origin) };
  }

  async #fetch(
    described: Descriptor,
    range: ByteRange,
    origin: ContentOrigin | undefined,
  ): Promise<BlobReader> {
    const { digest } = described;
    const path = peerPath(isManifestMediaType(described.mediaType) ? 'manifests' : 'blobs', digest, origin);
    // Checking needs every byte, so a checked fetch asks the peers for the whole blob whatever the range.
    const verifier = this.#verifier;
    const fetched = verifier === undefined ? range : { start: 0, end: described.size - 1 };
    const fetchFrom = async (offset: number, failed?: string): Promise<PeerStream | undefined> => {
      if (failed !== undefined) {
        this.#membership.setAside(failed, 'failed');
        // The cached providers may hold only the peer that just died: resume from a fresh lookup.
        this.#lookups.forget(digest);
      }
      const range =
        offset === 0 && fetched.end === described.size - 1 ? undefined : `bytes=${offset}-${fetched.end}`;
      const won = await this.#race(
        digest,
        async (provider, signal) =>
          getPeerBody(provider.registry, path, {
            range,
            signal,
            timeoutMs: this.#peerTimeoutMs,
            auth: await this.#auth.headers(provider.id, peerGet('GET', path, range)),
          }),
        origin?.signal,
      );
      return won === undefined
        ? undefined
        : { body: won.result.body, peer: won.provider.id, registry: won.provider.registry };
    };
    const first = await fetchFrom(fetched.start);
    if (first === undefined) throw new BlobUnknownError(`no peer could serve ${digest}`);
    const body = new PeerBlobReader(first, fetched, fetchFrom, this.#readTimeoutMs, () =>
      this.#metrics.peerResumes.inc({}),
    );
    if (verifier === undefined) return body;
    return new VerifyingReader(body, verifier.session(digest, described.size), {
      range,
      size: described.size,
      scratch: () => Buffer.from(new SharedArrayBuffer(this.#chunkBytes)),
      onCorrupt: (verdict) => this.#corrupt(described, body.peers, verdict),
    });
  }

  /** Peers sent bytes that fail `descriptor`'s digest: set every one that sent part of it aside, and tell it. */
  #corrupt(descriptor: Descriptor, peers: ReadonlyMap<string, string>, verdict: Verdict): void {
    const kind = isManifestMediaType(descriptor.mediaType) ? 'manifest' : 'blob';
    this.#metrics.peerCorrupt.inc({ kind });
    this.#log?.warn(
      { digest: descriptor.digest, peers: [...peers.keys()], verdict },
      'peer content failed its digest check; cutting the response and setting the peers aside',
    );
    for (const peer of peers.keys()) {
      this.#membership.setAside(peer, 'corrupt');
      const report = { kind: 'corrupt', digest: descriptor.digest } as const;
      void this.#router.tell(peer, report, AbortSignal.timeout(this.#peerTimeoutMs));
    }
    this.#lookups.forget(descriptor.digest);
  }

  /** HEADs `paths` in order on racing providers of `key`; the first answer describes the content. */
  async #describe(key: string, paths: string[], gone?: AbortSignal): Promise<Descriptor | undefined> {
    const won = await this.#race(
      key,
      async (provider, signal) => {
        let lastError: unknown;
        for (const path of paths) {
          try {
            return await requestPeer(provider.registry, path, {
              method: 'HEAD',
              signal,
              timeoutMs: this.#peerTimeoutMs,
              auth: await this.#auth.headers(provider.id, peerGet('HEAD', path, undefined)),
            });
          } catch (err) {
            lastError = err;
          }
        }
        throw lastError;
      },
      gone,
    );
    if (won === undefined) return undefined;
    return describedBy(won.result.headers);
  }

  /**
   * Races providers of `key`; failed peers are quarantined, time to headers feeds the hedge delay. When
   * `gone` aborts (the client left), the lookup and every attempt still running are abandoned at once.
   */
  async #race<T>(
    key: string,
    attempt: (provider: Provider, signal: AbortSignal) => Promise<T>,
    gone?: AbortSignal,
  ): Promise<Attempt<T> | undefined> {
    const lookup = new AbortController();
    const timed = async (provider: Provider, signal: AbortSignal): Promise<T> => {
      const started = performance.now();
      try {
        const response = await attempt(provider, signal);
        this.#latency.record(performance.now() - started);
        return response;
      } catch (err) {
        // A peer that answered 404 is alive and only lacks this key (a record outlived its content, or a
        // tag it no longer serves): set aside, it would be skipped for every other key too.
        const answered = err instanceof PeerRequestError && err.answered;
        if (!signal.aborted) this.#log?.debug({ key, peer: provider.id, err }, 'peer attempt failed');
        if (!signal.aborted && !answered) this.#membership.setAside(provider.id, 'failed');
        // Either way it is not handed out for this key again; the lookup cache refreshes the key.
        if (!signal.aborted) this.#lookups.failed(key, provider.id);
        throw err;
      }
    };
    try {
      const won = await hedgedRace(this.#membership.live(this.#lookups.lookup(key, lookup.signal)), timed, {
        maxAttempts: this.#maxAttempts,
        hedgeDelayMs: Math.min(HEDGE_MAX_MS, Math.max(HEDGE_MIN_MS, this.#latency.quantile(0.9, 100))),
        firstProviderTimeoutMs: this.#resolveWait.ms,
        signal:
          gone === undefined
            ? AbortSignal.timeout(this.#peerTimeoutMs)
            : AbortSignal.any([AbortSignal.timeout(this.#peerTimeoutMs), gone]),
      });
      return won;
    } finally {
      lookup.abort();
    }
  }
}
