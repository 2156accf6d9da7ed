// The peer wire protocol: every header one shoal sends another over HTTP (to its blob port). Peers speak plain OCI
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
