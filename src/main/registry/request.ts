import type { PeerClaim } from '../peer/peer-auth.js';
import type { RequestTrace } from './trace.js';

/** The parts of a request the handler needs, copied out of the transport before any await. */
export interface PullRequest {
  method: string;
  /** Raw path, still percent-encoded. */
  path: string;
  /** Raw query string without `?`. */
  query: string;
  range: string | undefined;
  /** The client's Accept header: manifests of other types are not sent to it. */
  accept?: string | undefined;
  /** Sent by a peer shoal: answer from this node's own store only, so requests never loop. */
  mirrored?: boolean;
  /** Sent by a peer shoal that elected this node to fetch the content from upstream. */
  ownerFetch?: boolean;
  /** The member a peer request says it comes from, with its signature; checked before any peer treatment. */
  peer?: PeerClaim | undefined;
  /** Aborts when the client disconnects before its answer is complete. */
  signal?: AbortSignal | undefined;
  /** What the handler learns of the request, for the ledger that counts it; absent when nobody counts. */
  trace?: RequestTrace | undefined;
}

/** Methods HTTP and WebDAV define: refused with 405; any other method is one nobody implements (501). */
const KNOWN_METHODS: ReadonlySet<string> = new Set(
  'GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK'.split(
    ' ',
  ),
);

export function isKnownMethod(method: string): boolean {
  return KNOWN_METHODS.has(method);
}
