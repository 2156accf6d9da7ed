import { BlobUnknownError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { Metrics } from '../metrics/metrics.js';
import type { Digest } from '../oci/digest.js';
import { isManifestMediaType } from '../oci/media-types.js';
import type { ByteRange } from '../oci/range.js';
import type { Router } from '../routing/router.js';
import { PassThroughStore } from '../store/pass-through.js';
import type {
  BlobReader,
  Content,
  ContentOrigin,
  ContentSource,
  ContentStore,
  Descriptor,
} from '../store/store.js';
import type { DigestVerifier } from '../verify/verifier.js';
import { VerifyingReader } from '../verify/verifying-reader.js';
import { type CorruptDeps, reportCorrupt } from './corrupt.js';
import { Membership } from './membership.js';
import { askBody, askHead, type PeerAskDeps } from './peer-ask.js';
import { PeerAuth } from './peer-auth.js';
import { PeerBlobReader, type PeerStream } from './peer-reader.js';
import { describedBy, peerPath } from './protocol.js';
import { PeerRace, type PeerRaceInit } from './race.js';

export interface MirroringStoreInit extends PeerRaceInit {
  /**
   * Longest silence inside a peer's body, and the window in which it must bring 64 KiB, before the body
   * moves to another peer; default 1500 ms, so the move fits in the server's 5 s bound on one read.
   */
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
  readonly #ask: PeerAskDeps;
  readonly #corrupt: CorruptDeps;
  readonly #race: PeerRace;
  readonly #membership: Membership;
  readonly #peerTimeoutMs: number;
  readonly #readTimeoutMs: number;
  readonly #chunkBytes: number;
  readonly #verifier: DigestVerifier | undefined;
  readonly #metrics: Metrics;
  readonly #log: Logger | undefined;

  constructor(deps: MirroringStoreDeps, init: MirroringStoreInit = {}) {
    super(deps.local, `${deps.local.kind}+peers`);
    this.#router = deps.router;
    this.#verifier = deps.verifier;
    this.#metrics = deps.metrics ?? new Metrics();
    this.#membership =
      deps.membership ?? new Membership({ router: deps.router, setAside: this.#metrics.peerQuarantines });
    this.#log = deps.log;
    this.#peerTimeoutMs = init.peerTimeoutMs ?? 3000;
    this.#ask = {
      auth: deps.auth ?? new PeerAuth({ router: deps.router }),
      timeoutMs: this.#peerTimeoutMs,
      // A peer that sends more than it declared is counted and named; the excess never reaches anyone.
      onOverlong: (peer, digest, extra) => {
        this.#metrics.peerFailures.inc({ cause: 'overlong' });
        this.#log?.warn(
          { peer, digest, extra },
          'peer sent more bytes than its Content-Length; dropped them',
        );
      },
    };
    this.#race = new PeerRace(
      { router: deps.router, membership: this.#membership, metrics: this.#metrics, log: deps.log },
      { ...init, peerTimeoutMs: this.#peerTimeoutMs },
    );
    this.#readTimeoutMs = init.readTimeoutMs ?? 1500;
    this.#corrupt = {
      metrics: this.#metrics,
      log: this.#log,
      membership: this.#membership,
      router: this.#router,
      race: this.#race,
      peerTimeoutMs: this.#peerTimeoutMs,
    };
    this.#chunkBytes = init.chunkBytes ?? 1 << 20;
  }

  /** The local store answers, and the node can route, or has nobody to route to (a cluster of one). */
  override async ready(): Promise<boolean> {
    return (await this.inner.ready()) && (this.#router.ready() || this.#router.alone());
  }

  override async resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined> {
    const local = await this.inner.resolve(registry, repository, tag, origin);
    if (local !== undefined) return local;
    const path = `/v2/${repository}/manifests/${tag}?ns=${encodeURIComponent(registry)}`;
    const remote = await this.#describe(`${registry}/${repository}:${tag}`, [path], origin);
    return remote === undefined
      ? undefined
      : this.#atPeers(remote.descriptor, remote.peer, { registry, repository, kind: 'manifests' });
  }

  override async stat(digest: Digest, origin?: ContentOrigin): Promise<Content | undefined> {
    const local = await this.inner.stat(digest);
    if (local !== undefined) return local;
    // A client GET of a blob: ask the peers for the bytes at once, and describe them from that answer's
    // headers; a checked fetch asks for the whole blob whatever the range, so the answer serves any range.
    if (origin?.body === true && origin.kind === 'blobs' && this.#verifier !== undefined) {
      const fetched = await this.#getFirst(digest, origin);
      // Nobody answered the GET at all: a HEAD would wait as long again for the same silence.
      if (fetched === 'unheard') return undefined;
      // A client that left starts nothing more; else a peer that would not GET may still describe it.
      if (fetched !== undefined || origin.signal?.aborted === true) return fetched;
    }
    // A peer serves a manifest only from /manifests/, so ask where the client asked first, then the other.
    const kinds =
      origin?.kind === 'manifests' ? (['manifests', 'blobs'] as const) : (['blobs', 'manifests'] as const);
    const remote = await this.#describe(
      digest,
      kinds.map((kind) => peerPath(kind, digest, origin)),
      origin,
      digest,
    );
    // A peer that describes other content than was asked for is not believed.
    return remote?.descriptor.digest === digest
      ? this.#atPeers(remote.descriptor, remote.peer, origin)
      : undefined;
  }

  /**
   * The blobs of a manifest just served are what its client asks for next: their providers are looked up
   * now, for those not held here, so each blob request finds them known instead of waiting on the DHT.
   */
  override prepare(digests: readonly Digest[], origin: ContentOrigin): void {
    super.prepare(digests, origin);
    void (async () => {
      for (const digest of digests) {
        if (origin.signal?.aborted === true) return;
        if ((await this.inner.stat(digest).catch(() => undefined)) === undefined) this.#race.warm(digest);
      }
    })().catch(() => undefined);
  }

  /**
   * One GET of the whole blob, raced across its providers, whose headers describe it: the content it
   * returns opens on that body (once; a second open fetches anew). The body is dropped if nobody opens it
   * within the peer timeout. Undefined when no peer served such a GET (the caller then describes with HEAD);
   * `unheard` when no provider was found or none answered at all.
   */
  async #getFirst(digest: Digest, origin: ContentOrigin): Promise<Content | 'unheard' | undefined> {
    const path = peerPath('blobs', digest, origin);
    let answered = true;
    const first = await this.#fetchFrom(digest, path, undefined, origin, undefined, (heard) => {
      answered = heard;
    });
    if (first === undefined) return answered ? undefined : 'unheard';
    const descriptor = describedBy(Object.fromEntries(first.headers));
    if (descriptor === undefined || descriptor.digest !== digest || first.status !== 200) {
      first.stream.body.destroy();
      return undefined;
    }
    let waiting: PeerStream | undefined = first.stream;
    const discard = (): void => {
      clearTimeout(timer);
      waiting?.body.destroy();
      waiting = undefined;
    };
    const timer = setTimeout(discard, this.#peerTimeoutMs);
    timer.unref();
    const source: ContentSource = { kind: 'peer', peer: first.stream.peer };
    return {
      ...descriptor,
      source,
      discard,
      open: (range) => {
        const taken = waiting;
        waiting = undefined;
        clearTimeout(timer);
        return this.#fetch(descriptor, range, origin, source, taken);
      },
    };
  }

  /**
   * Content the peers described: opening it fetches from them, on behalf of the client in `origin`. Its
   * source names the peer that described it until a body arrives, then the peer that sent it.
   */
  #atPeers(descriptor: Descriptor, peer: string, origin: ContentOrigin | undefined): Content {
    const source: ContentSource = { kind: 'peer', peer };
    return { ...descriptor, source, open: (range) => this.#fetch(descriptor, range, origin, source) };
  }

  /** A GET of `path` (from `range`, or whole) raced across the providers of `digest`. */
  async #fetchFrom(
    digest: Digest,
    path: string,
    range: string | undefined,
    origin: ContentOrigin | undefined,
    exclude?: string,
    lost?: (answered: boolean) => void,
  ): Promise<{ stream: PeerStream; status: number; headers: ReadonlyMap<string, string> } | undefined> {
    const won = await this.#race.run(
      digest,
      'GET',
      (provider, signal) => askBody(this.#ask, provider, { path, digest, range }, signal),
      { client: origin, exclude, lost },
    );
    if (won === undefined) return undefined;
    const { body, status, headers } = won.result;
    return { stream: { body, peer: won.provider.id, registry: won.provider.registry }, status, headers };
  }

  async #fetch(
    described: Descriptor,
    range: ByteRange,
    origin: ContentOrigin | undefined,
    source: ContentSource,
    /** A whole body already under way (from the GET that described it), read first when given. */
    started?: PeerStream,
  ): Promise<BlobReader> {
    const { digest } = described;
    const path = peerPath(isManifestMediaType(described.mediaType) ? 'manifests' : 'blobs', digest, origin);
    // Checking needs every byte, so a checked fetch asks the peers for the whole blob whatever the range.
    const verifier = this.#verifier;
    const fetched = verifier === undefined ? range : { start: 0, end: described.size - 1 };
    const fetchFrom = async (
      offset: number,
      failed?: string,
      silent = false,
    ): Promise<PeerStream | undefined> => {
      if (failed !== undefined) {
        this.#membership.setAside(failed, silent ? 'silent' : 'failed');
        // The cached providers may hold only the peer that just died: resume from a fresh lookup.
        this.#race.forget(digest);
      }
      const range =
        offset === 0 && fetched.end === described.size - 1 ? undefined : `bytes=${offset}-${fetched.end}`;
      return (await this.#fetchFrom(digest, path, range, origin, failed))?.stream;
    };
    const first = started ?? (await fetchFrom(fetched.start));
    if (first === undefined) throw new BlobUnknownError(`no peer could serve ${digest}`);
    source.peer = first.peer;
    const body = new PeerBlobReader(first, fetched, fetchFrom, this.#readTimeoutMs, () => {
      this.#metrics.peerResumes.inc({});
      this.#metrics.peerFailures.inc({ cause: 'broken' });
    });
    if (verifier === undefined) return body;
    return new VerifyingReader(body, verifier.session(digest, described.size), {
      range,
      size: described.size,
      scratch: () => Buffer.from(new SharedArrayBuffer(this.#chunkBytes)),
      onCorrupt: (verdict) =>
        reportCorrupt(this.#corrupt, { descriptor: described, peers: body.peers, verdict }),
    });
  }

  /** HEADs `paths` in order on racing providers of `key`; the first answer describes the content. */
  async #describe(
    key: string,
    paths: string[],
    origin?: ContentOrigin,
    /** The digest `key` names, when it names one: an answer for another is a wrong one. */
    expected?: Digest,
  ): Promise<{ descriptor: Descriptor; peer: string } | undefined> {
    const won = await this.#race.run(
      key,
      'HEAD',
      (provider, signal) => askHead(this.#ask, provider, paths, expected, signal),
      { client: origin },
    );
    const descriptor = won === undefined ? undefined : describedBy(won.result.headers);
    return descriptor === undefined || won === undefined ? undefined : { descriptor, peer: won.provider.id };
  }
}
