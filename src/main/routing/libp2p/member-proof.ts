import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { SigningKeys } from './signing-keys.js';

/** Most dials at once to signers of peer requests this node holds no connection to. */
const MAX_VERIFY_DIALS = 16;

/** The peer id `id` names, or undefined when it names none. */
export function peerIdOf(id: string): PeerId | undefined {
  try {
    return peerIdFromString(id);
  } catch {
    return undefined;
  }
}

/**
 * Signatures by this node's identity key, and the check that a signature is a member's: made by the key
 * an Ed25519 peer id holds, by a node that is connected, or that can be reached. A connection completes
 * only through the private network's key and the peer's own identity key, so it is the proof of membership.
 */
export class MemberProof {
  readonly #node: Libp2p;
  readonly #keys: SigningKeys;
  readonly #isGone: (id: string) => boolean;
  #dials = 0;

  constructor(node: Libp2p, key: PrivateKey, isGone: (id: string) => boolean) {
    this.#node = node;
    this.#keys = new SigningKeys(key);
    this.#isGone = isGone;
  }

  async sign(payload: Uint8Array): Promise<Uint8Array> {
    return this.#keys.sign(payload);
  }

  async verify(
    id: string,
    payload: Uint8Array,
    signature: Uint8Array,
    signal: AbortSignal,
  ): Promise<boolean> {
    const peer = peerIdOf(id);
    if (peer?.publicKey === undefined || peer.equals(this.#node.peerId)) return false;
    if (!(await this.#keys.verify(peer, payload, signature))) return false;
    if (this.#node.getConnections(peer).length > 0) return true;
    // Anyone can sign with a key of their own: dials on their behalf are few at a time, or refused.
    if (this.#isGone(id) || this.#dials >= MAX_VERIFY_DIALS) return false;
    this.#dials++;
    try {
      await this.#node.dial(peer, { signal });
      return true;
    } catch {
      return false;
    } finally {
      this.#dials--;
    }
  }
}
