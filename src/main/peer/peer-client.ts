import { Agent, type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { ShoalError, type ShoalErrorOptions } from '../errors.js';
import { MANIFEST_ACCEPT } from '../oci/media-types.js';
import { MIRRORED_HEADER, OWNER_FETCH_HEADER } from './protocol.js';

export class PeerRequestError extends ShoalError {
  override readonly code = 'PEER_REQUEST_FAILED';
  override readonly status = 502;
  override readonly ociCode = 'UNAVAILABLE';
  /** The HTTP status the peer answered with; undefined when it did not answer at all. */
  readonly peerStatus: number | undefined;
  /** The peer sent no headers within the request's time bound. */
  readonly timedOut: boolean;
  /** The peer answered for other content than was asked for: it lies or is broken, never merely absent. */
  readonly wrongDigest: boolean;

  constructor(
    message: string,
    options: ShoalErrorOptions & { peerStatus?: number; timedOut?: boolean; wrongDigest?: boolean } = {},
  ) {
    super(message, options);
    this.peerStatus = options.peerStatus;
    this.timedOut = options.timedOut ?? false;
    this.wrongDigest = options.wrongDigest ?? false;
  }

  /** The peer is up and answered, only not with the content: no reason to stop asking it other things. */
  get answered(): boolean {
    return this.peerStatus !== undefined && this.peerStatus < 500;
  }
}

/** Why a request to a peer failed, as `shoal_peer_failures_total` counts it. */
export type PeerFailureCause =
  | 'timeout'
  | 'refused'
  | 'broken'
  | 'digest_mismatch'
  | 'wrong_digest'
  | 'overlong'
  | 'unauthorised'
  | 'absent'
  | 'error';

/** The cause of a failed request to a peer, before its body (`broken` and `digest_mismatch` come later). */
export function failureCause(err: unknown): PeerFailureCause {
  if (!(err instanceof PeerRequestError)) return 'error';
  if (err.timedOut) return 'timeout';
  if (err.wrongDigest) return 'wrong_digest';
  const status = err.peerStatus;
  if (status === 401 || status === 403) return 'unauthorised';
  if (status === 404) return 'absent';
  if (status !== undefined) return 'error';
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'refused';
  return code === 'ETIMEDOUT' ? 'timeout' : 'error';
}

/**
 * Throws when a peer's answer names another digest than the one asked for (`Docker-Content-Digest`). Such
 * an answer is a lie or a broken peer: the race moves on to the next provider, and the peer is set aside.
 */
export function expectDigest(named: string | undefined, digest: string, host: string): void {
  if (named === undefined || named === digest) return;
  throw new PeerRequestError(`peer ${host} answered for ${named.slice(0, 80)} when asked for ${digest}`, {
    wrongDigest: true,
  });
}

export interface PeerResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Paused body; the caller pulls from it (backpressure reaches the peer's socket). */
  body: IncomingMessage;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One request to a peer's registry. Resolves when the status line and headers arrive (2xx only; any other
 * status rejects and the body is discarded). `timeoutMs` bounds the wait for headers.
 */
export function requestPeer(
  registry: string,
  path: string,
  options: {
    method: 'GET' | 'HEAD';
    range?: string | undefined;
    signal: AbortSignal;
    timeoutMs: number;
    /** Proof that this node is a member (PeerAuth.headers). */
    auth: Record<string, string>;
  },
): Promise<PeerResponse> {
  const headers: Record<string, string> = { ...options.auth, [MIRRORED_HEADER]: 'true', accept: '*/*' };
  if (options.range !== undefined) headers.range = options.range;
  return send('peer', registry, path, { ...options, headers }, (status) => status >= 200 && status < 300);
}

/**
 * Asks the node elected to fetch a digest from upstream for it. Resolves at its headers (200 with a length,
 * which may come only once the owner has heard from upstream); anything else rejects.
 */
export function requestOwner(
  registry: string,
  path: string,
  kind: 'manifests' | 'blobs',
  timeoutMs: number,
  auth: Record<string, string>,
): Promise<PeerResponse> {
  const headers = {
    ...auth,
    [OWNER_FETCH_HEADER]: 'true',
    accept: kind === 'manifests' ? MANIFEST_ACCEPT : '*/*',
  };
  return send(
    'owner',
    registry,
    path,
    { method: 'GET', headers, timeoutMs },
    (status, res) => status === 200 && res.headers['content-length'] !== undefined,
  );
}

/** One request to another node, resolved at headers `accepted` approves; any other answer is discarded. */
async function send(
  role: 'peer' | 'owner',
  registry: string,
  path: string,
  options: SendOptions,
  accepted: (status: number, res: IncomingMessage) => boolean,
): Promise<PeerResponse> {
  try {
    return await sendOnce(role, registry, path, options, accepted, agent);
  } catch (err) {
    // A pooled connection the peer closed as this request went out (its idle timeout) fails before any
    // answer. Every peer request is a GET or HEAD, so it is asked once more on a connection of its own.
    if (!(err instanceof StaleConnectionError) || options.signal?.aborted === true) throw err;
    return sendOnce(role, registry, path, options, accepted, false);
  }
}

interface SendOptions {
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs: number;
}

/** A request on a reused keep-alive connection that the peer had closed; nothing was answered. */
class StaleConnectionError extends PeerRequestError {}

function sendOnce(
  role: 'peer' | 'owner',
  registry: string,
  path: string,
  options: SendOptions,
  accepted: (status: number, res: IncomingMessage) => boolean,
  via: Agent | false,
): Promise<PeerResponse> {
  return new Promise((resolve, reject) => {
    const signal = options.signal === undefined ? {} : { signal: options.signal };
    const req = request(
      `${registry}${path}`,
      { method: options.method, headers: options.headers, agent: via, ...signal },
      (res) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (!accepted(status, res)) {
          res.resume();
          reject(
            new PeerRequestError(`${role} ${registry} answered ${status} for ${path}`, {
              peerStatus: status,
            }),
          );
          return;
        }
        // A HEAD answer has no body, but its socket goes back to the agent only once the (empty) body has
        // been read: left paused, every HEAD kept a keep-alive socket, and after 64 of them requests to
        // that peer queued until its idle timeout closed some (seconds of stall, then 404s).
        if (options.method === 'HEAD') res.resume();
        else res.pause();
        resolve({ status, headers: res.headers, body: res });
      },
    );
    const timer = setTimeout(
      () =>
        req.destroy(
          new PeerRequestError(`${role} ${registry} sent no headers in ${options.timeoutMs} ms`, {
            timedOut: true,
          }),
        ),
      options.timeoutMs,
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err instanceof PeerRequestError) return reject(err);
      const message = `${role} ${registry}: ${err.message}`;
      const stale = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      reject(
        stale
          ? new StaleConnectionError(message, { cause: err })
          : new PeerRequestError(message, { cause: err }),
      );
    });
    req.end();
  });
}
