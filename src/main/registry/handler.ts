import {
  BlobUnknownError,
  ContentCorruptError,
  ManifestTooLargeError,
  ManifestUnknownError,
  MethodNotImplementedError,
  MethodUnsupportedError,
  PeerUnauthorizedError,
} from '../errors.js';
import {
  acceptsManifest,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPE_OCTET_STREAM,
  referencedBlobs,
} from '../oci/media-types.js';
import { type PullRoute, parsePullPath } from '../oci/path.js';
import { parseRange } from '../oci/range.js';
import type { PeerClaim, SignedRequest } from '../peer/peer-auth.js';
import { TAG_CONFIRMED_HEADER } from '../peer/protocol.js';
import {
  type Content,
  type ContentOrigin,
  type ContentStore,
  type Descriptor,
  readAll,
} from '../store/store.js';
import type { Discovery } from '../tags/discovery.js';
import { withTimeout } from '../util/timeout.js';
import { type DiscoveryReplyInit, referrersReply, tagListReply } from './discovery-replies.js';
import { API_VERSION_HEADER, bodyReply, type Headers, type Reply, textReply } from './reply.js';
import { isKnownMethod, type PullRequest } from './request.js';
import { type ServedInit, ServedRegistries } from './served.js';
import { DISCARDED_TRACE, type RequestTrace } from './trace.js';

export interface PullHandlerInit extends ServedInit {
  /** Hard cap on HEAD and manifest requests; past it the answer is 404 so containerd falls back. Default 3000 ms. */
  manifestTimeoutMs?: number;
}

export interface PullHandlerDeps {
  /** What clients are served from (the local store, or the local store plus peers). */
  store: ContentStore;
  /** What peers are served from; defaults to `store`. Never a store that asks peers again. */
  localStore?: ContentStore;
  /** Readiness of everything the node needs (store now, router later). */
  ready: () => Promise<boolean>;
  /**
   * Proves a request that claims peer treatment comes from a member; resolves the member's id or throws
   * PeerUnauthorizedError (PeerAuth.verify). Absent (no P2P): every such claim is refused.
   */
  authenticate?: (claim: PeerClaim | undefined, request: SignedRequest) => Promise<string>;
  /** Tag lists and referrers; absent, tag lists come from nothing and referrers are an empty index. */
  discovery?: Discovery;
}

const PING_BODY = Buffer.from('{}');

/** Answers the OCI distribution pull API from a content store. Knows nothing of the HTTP server. */
export class PullHandler {
  readonly #store: ContentStore;
  readonly #localStore: ContentStore;
  readonly #ready: () => Promise<boolean>;
  readonly #authenticate: PullHandlerDeps['authenticate'];
  readonly #discoveryInit: DiscoveryReplyInit;
  readonly #served: ServedRegistries;
  readonly #manifestTimeoutMs: number;

  constructor(deps: PullHandlerDeps, init: PullHandlerInit = {}) {
    this.#store = deps.store;
    this.#localStore = deps.localStore ?? deps.store;
    this.#ready = deps.ready;
    this.#authenticate = deps.authenticate;
    this.#served = new ServedRegistries(init);
    this.#manifestTimeoutMs = init.manifestTimeoutMs ?? 3000;
    this.#discoveryInit = {
      discovery: deps.discovery,
      filters: this.#served.filters,
      timeoutMs: this.#manifestTimeoutMs,
    };
  }

  /**
   * Answers one request. The registry port serves reads only: every method but GET and HEAD is refused, and
   * nothing a request says changes what the node holds or knows (peer notices travel over the router).
   */
  async handle(request: PullRequest): Promise<Reply> {
    const head = request.method === 'HEAD';
    const trace = request.trace ?? DISCARDED_TRACE;
    if (!head && request.method !== 'GET') {
      if (!isKnownMethod(request.method)) throw new MethodNotImplementedError('unknown method');
      throw new MethodUnsupportedError(
        `${request.method.slice(0, 16)} is not supported: shoal serves pulls only`,
      );
    }
    if (request.path === '/livez' || request.path === '/readyz') {
      trace.probe = true;
      if (request.path === '/livez') return textReply(200, 'ok', head);
      return (await this.#ready()) ? textReply(200, 'ready', head) : textReply(503, 'not ready', head);
    }
    const parsed = parsePullPath(request.path);
    if (parsed.kind === 'ping') {
      trace.source = 'local';
      return bodyReply(200, 'application/json', PING_BODY, head);
    }
    // Filters, mirrored registries and --resolve-tags hold for every request, whoever sends it.
    const { registry, route } = this.#served.place(request.query, parsed, trace);
    const member = await this.#member(request);
    trace.member = member;
    if (route.kind === 'tags')
      return tagListReply(this.#discoveryInit, registry, route.repository, request, head, trace);
    if (route.kind === 'referrers')
      return referrersReply(
        this.#discoveryInit,
        registry,
        route.repository,
        route.digest,
        request,
        head,
        trace,
      );
    const store = request.mirrored === true ? this.#localStore : this.#store;
    const origin: ContentOrigin = {
      registry,
      repository: route.repository,
      kind: route.kind === 'manifest' ? 'manifests' : 'blobs',
      forwarded: request.ownerFetch === true,
      signal: request.signal,
      body: !head && route.kind === 'blob',
    };
    trace.origin = origin;
    if (route.kind === 'manifest') {
      const name = route.tag ?? route.digest;
      return this.#capped(
        this.#manifest(store, route, head, origin, request.accept, trace),
        (message) => new ManifestUnknownError(`manifest ${name}: ${message}`),
      );
    }
    if (head) {
      // Range is defined for GET only (RFC 9110 §14.2): a HEAD describes the whole blob.
      return this.#capped(
        this.#blob(store, route.digest, undefined, head, origin, trace),
        (message) => new BlobUnknownError(`blob ${route.digest}: ${message}`),
      );
    }
    const reply = await this.#blob(store, route.digest, request.range, head, origin, trace);
    return reply.kind === 'stream' && member !== undefined ? { ...reply, member } : reply;
  }

  /**
   * The member a request that claims peer treatment comes from (undefined for a plain client, which gets
   * what it always got). A claim without proof is refused, never served as a plain request: a peer header
   * must never be a way around anything.
   */
  async #member(request: PullRequest): Promise<string | undefined> {
    const mirrored = request.mirrored === true;
    const ownerFetch = request.ownerFetch === true;
    if (!mirrored && !ownerFetch && request.peer === undefined) return undefined;
    if (this.#authenticate === undefined) throw new PeerUnauthorizedError('this node has no peers');
    const target = request.query === '' ? request.path : `${request.path}?${request.query}`;
    return this.#authenticate(request.peer, {
      method: request.method,
      target,
      range: request.range,
      mirrored,
      ownerFetch,
    });
  }

  /**
   * containerd waits on a mirror that never answers, so resolving metadata has a hard cap: past it, a
   * 404 sends containerd to the next host at once.
   */
  #capped(work: Promise<Reply>, onTimeout: (message: string) => Error): Promise<Reply> {
    const reply = withTimeout(work, this.#manifestTimeoutMs, 'the content store', onTimeout);
    // A reply that arrives after the cap still owns a reader; close it.
    work.then(
      (late) => {
        if (late.kind === 'stream') reply.catch(() => late.reader.close());
      },
      () => undefined,
    );
    return reply;
  }

  async #manifest(
    store: ContentStore,
    route: Extract<PullRoute, { kind: 'manifest' }>,
    head: boolean,
    origin: ContentOrigin,
    accept: string | undefined,
    trace: RequestTrace,
  ): Promise<Reply> {
    const descriptor =
      route.tag !== undefined
        ? await store.resolve(origin.registry, route.repository, route.tag, origin)
        : await store.stat(route.digest, origin);
    trace.content = descriptor;
    const name = route.tag === undefined ? `@${route.digest}` : `:${route.tag}`;
    if (descriptor === undefined || descriptor.mediaType === MEDIA_TYPE_OCTET_STREAM) {
      throw new ManifestUnknownError(`manifest ${route.repository}${name} is not held by this node`);
    }
    if (!acceptsManifest(accept, descriptor.mediaType)) {
      throw new ManifestUnknownError(
        `manifest ${route.repository}${name} is a ${descriptor.mediaType}, which the request does not accept`,
      );
    }
    if (descriptor.size > MAX_MANIFEST_BYTES) {
      throw new ManifestTooLargeError(
        `manifest ${descriptor.digest} is ${descriptor.size} bytes, over the cap`,
      );
    }
    const headers: Array<readonly [string, string]> = [
      ...contentHeaders(descriptor, descriptor.size),
      ['Content-Type', descriptor.mediaType],
    ];
    // Peers hold an answer from memory to the age of the registry's confirmation (--tag-max-age).
    if (route.tag !== undefined && descriptor.confirmedAt !== undefined)
      headers.push([TAG_CONFIRMED_HEADER, String(descriptor.confirmedAt)]);
    if (head) return { kind: 'full', status: 200, headers, body: undefined };
    try {
      const body = await readAll(descriptor);
      // The client asks for these blobs next. A manifest from elsewhere (a peer, upstream) says they are
      // not here either: the stores that look elsewhere may start now. One held here costs nothing more.
      if ((descriptor.source?.kind ?? 'local') !== 'local')
        store.prepare?.(referencedBlobs(body, descriptor.mediaType), { ...origin, kind: 'blobs' });
      return { kind: 'full', status: 200, headers, body };
    } catch (err) {
      // Bytes that failed their digest are never served; a 404 sends containerd to the next host at once.
      if (!(err instanceof ContentCorruptError)) throw err;
      throw new ManifestUnknownError(
        `manifest ${descriptor.digest} could not be read intact: ${err.message}`,
        {
          cause: err,
        },
      );
    }
  }

  async #blob(
    store: ContentStore,
    digest: Descriptor['digest'],
    rangeHeader: string | undefined,
    head: boolean,
    origin: ContentOrigin,
    trace: RequestTrace,
  ): Promise<Reply> {
    const descriptor = await store.stat(digest, origin);
    trace.content = descriptor;
    try {
      return await this.#blobReply(descriptor, digest, rangeHeader, head);
    } finally {
      // A body the store fetched with the description and nobody opened (a HEAD, a bad range, a manifest
      // at a blob path) is dropped; after an open this does nothing.
      descriptor?.discard?.();
    }
  }

  async #blobReply(
    descriptor: Content | undefined,
    digest: Descriptor['digest'],
    rangeHeader: string | undefined,
    head: boolean,
  ): Promise<Reply> {
    if (descriptor === undefined || descriptor.mediaType !== MEDIA_TYPE_OCTET_STREAM) {
      // Manifests are served from /manifests/ only, so a client never mistakes one path for the other.
      throw new BlobUnknownError(`blob ${digest} is not held by this node`);
    }
    const range = parseRange(rangeHeader, descriptor.size);
    const whole = { start: 0, end: descriptor.size - 1 };
    const length = range === undefined ? descriptor.size : range.end - range.start + 1;
    const headers: Array<readonly [string, string]> = [
      ...contentHeaders(descriptor, length),
      ['Content-Type', MEDIA_TYPE_OCTET_STREAM],
      ['Accept-Ranges', 'bytes'],
    ];
    if (range !== undefined)
      headers.push(['Content-Range', `bytes ${range.start}-${range.end}/${descriptor.size}`]);
    const status = range === undefined ? 200 : 206;
    if (head || length === 0)
      return { kind: 'full', status, headers, body: head ? undefined : Buffer.alloc(0) };
    try {
      const reader = await descriptor.open(range ?? whole);
      return { kind: 'stream', status, headers, reader, length };
    } catch (err) {
      // Bytes that failed their check (found so before this request: a download it joined) are never
      // served; a 404 sends containerd to the next host at once, as for a manifest.
      if (!(err instanceof ContentCorruptError)) throw err;
      throw new BlobUnknownError(`blob ${digest} could not be read intact: ${err.message}`, { cause: err });
    }
  }
}

function contentHeaders(descriptor: Descriptor, length: number): Headers {
  return [
    ['Content-Length', String(length)],
    ['Docker-Content-Digest', descriptor.digest],
    ['Etag', `"${descriptor.digest}"`],
    API_VERSION_HEADER,
  ];
}
