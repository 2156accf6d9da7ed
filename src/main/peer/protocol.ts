import type { IncomingHttpHeaders } from 'node:http';
import { type Digest, isDigest } from '../oci/digest.js';
import { isManifestMediaType, MEDIA_TYPE_OCTET_STREAM } from '../oci/media-types.js';
import type { ContentOrigin, Descriptor } from '../store/store.js';
import type { SignedRequest } from './peer-auth.js';

// The peer wire protocol: every header one shoal sends another over HTTP (to its registry port). Peers speak plain OCI
// distribution (GET and HEAD on /v2/…) plus these; routing and notices travel over libp2p (routing/libp2p).

/** Who a peer request says it is from, when it was signed, and the signature (base64url). */
export const PEER_ID_HEADER = 'x-shoal-peer';
export const PEER_TIME_HEADER = 'x-shoal-peer-time';
export const PEER_SIGNATURE_HEADER = 'x-shoal-peer-signature';

/**
 * Marks a request as coming from a peer: the receiver serves it from its own store only, so requests never
 * loop. It grants nothing else, and only a request signed by a member may carry it (see PeerAuth).
 */
export const MIRRORED_HEADER = 'x-shoal-mirrored';

/** Sent to the node elected to fetch a digest from upstream: it fetches itself and never forwards again. */
export const OWNER_FETCH_HEADER = 'x-shoal-owner-fetch';

/** On a manifest answered by tag: when a registry last confirmed the tag names it (ms since the epoch). */
export const TAG_CONFIRMED_HEADER = 'x-shoal-tag-confirmed';

// Peers serve digests whatever the repository; without an origin this name only satisfies the grammar.
const PEER_REPOSITORY = 'shoal/peer';

/**
 * Where on a peer a digest is asked for: under the repository and registry the client asked for, so the
 * peer applies the same filters and mirrored registries to it as to any request.
 */
export function peerPath(
  kind: 'blobs' | 'manifests',
  digest: Digest,
  origin: ContentOrigin | undefined,
): string {
  if (origin === undefined) return `/v2/${PEER_REPOSITORY}/${kind}/${digest}`;
  return `/v2/${origin.repository}/${kind}/${digest}?ns=${encodeURIComponent(origin.registry)}`;
}

/** A mirrored request to a peer, as its signature covers it. */
export function peerGet(method: 'GET' | 'HEAD', target: string, range: string | undefined): SignedRequest {
  return { method, target, range, mirrored: true, ownerFetch: false };
}

/** The content a peer's answer to HEAD describes; undefined when its headers do not describe any. */
export function describedBy(headers: IncomingHttpHeaders): Descriptor | undefined {
  const digest = headers['docker-content-digest'];
  const size = Number(headers['content-length']);
  const contentType = headers['content-type'];
  if (typeof digest !== 'string' || !isDigest(digest) || !Number.isSafeInteger(size) || size < 0) {
    return undefined;
  }
  const mediaType = isManifestMediaType(contentType) ? contentType : MEDIA_TYPE_OCTET_STREAM;
  const confirmedAt = Number(headers[TAG_CONFIRMED_HEADER]);
  return Number.isSafeInteger(confirmedAt) && confirmedAt > 0
    ? { digest: digest as Digest, size, mediaType, confirmedAt }
    : { digest: digest as Digest, size, mediaType };
}
