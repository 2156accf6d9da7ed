import { PeerUnauthorizedError } from '../errors.js';
import type { Router } from '../routing/router.js';
import { PEER_ID_HEADER, PEER_SIGNATURE_HEADER, PEER_TIME_HEADER } from './protocol.js';

/** Longer than any peer id: such a claim is refused before any work. */
const MAX_PEER_ID = 128;

/** The claim a request carries, copied from its headers. */
export interface PeerClaim {
  id: string;
  time: string;
  signature: string;
}

/** The parts of a request a signature covers. */
export interface SignedRequest {
  method: string;
  /** Path and query exactly as sent (`/v2/…?ns=…`). */
  target: string;
  range: string | undefined;
  /** Answer from the receiver's own store only (`X-Shoal-Mirrored`). */
  mirrored: boolean;
  /** The receiver is elected to fetch from upstream (`X-Shoal-Owner-Fetch`). */
  ownerFetch: boolean;
}

export interface PeerAuthInit {
  /** Largest difference between a signature's time and this node's clock, in ms; default 60 s. */
  maxSkewMs?: number;
  /** Longest wait to reach a signer this node holds no connection to, in ms; default 1000. */
  verifyTimeoutMs?: number;
}

/**
 * Proof that a request claiming peer treatment comes from a member. The sender signs the request's method,
 * target, range, claims, time and the receiver's id with its libp2p identity key; the receiver checks the
 * signature against the key the sender's peer id names and that the sender is a member (see
 * `Router.verifyMember`). Bound to one receiver and a short window, a captured signature is good for
 * nothing but the same read from the same node a moment later.
 */
export class PeerAuth {
  readonly #router: Pick<Router, 'selfId' | 'sign' | 'verifyMember'>;
  readonly #maxSkewMs: number;
  readonly #verifyTimeoutMs: number;

  constructor(deps: { router: Pick<Router, 'selfId' | 'sign' | 'verifyMember'> }, init: PeerAuthInit = {}) {
    this.#router = deps.router;
    this.#maxSkewMs = init.maxSkewMs ?? 60_000;
    this.#verifyTimeoutMs = init.verifyTimeoutMs ?? 1000;
  }

  /** Headers proving `request` to `receiver` comes from this node. */
  async headers(receiver: string, request: SignedRequest): Promise<Record<string, string>> {
    const time = String(Date.now());
    const signature = await this.#router.sign(payload(receiver, request, time));
    return {
      [PEER_ID_HEADER]: this.#router.selfId,
      [PEER_TIME_HEADER]: time,
      [PEER_SIGNATURE_HEADER]: Buffer.from(signature).toString('base64url'),
    };
  }

  /** The member that sent `request`; throws PeerUnauthorizedError when the claim does not prove one. */
  async verify(claim: PeerClaim | undefined, request: SignedRequest): Promise<string> {
    if (claim === undefined || claim.id === '' || claim.id.length > MAX_PEER_ID || claim.signature === '') {
      throw new PeerUnauthorizedError('a peer request must be signed by a member');
    }
    const time = Number(claim.time);
    if (!Number.isSafeInteger(time) || Math.abs(Date.now() - time) > this.#maxSkewMs) {
      throw new PeerUnauthorizedError('the peer signature is outside its time window');
    }
    const signature = Buffer.from(claim.signature, 'base64url');
    const member = await this.#router
      .verifyMember(
        claim.id,
        payload(this.#router.selfId, request, claim.time),
        signature,
        AbortSignal.timeout(this.#verifyTimeoutMs),
      )
      .catch(() => false);
    if (!member) throw new PeerUnauthorizedError('the peer signature is not a member’s');
    return claim.id;
  }
}

function payload(receiver: string, request: SignedRequest, time: string): Uint8Array {
  const flags = `${request.mirrored ? 'm' : ''}${request.ownerFetch ? 'o' : ''}`;
  const lines = [
    'shoal-peer-request/1',
    receiver,
    request.method,
    request.target,
    request.range ?? '',
    flags,
    time,
  ];
  return new TextEncoder().encode(lines.join('\n'));
}
