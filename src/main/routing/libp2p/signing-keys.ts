import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import type { PeerId, PrivateKey } from '@libp2p/interface';

/** Members' public keys kept ready; a cluster of this many nodes never imports a key twice. */
const MAX_PUBLIC_KEYS = 1024;

const base64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/**
 * Ed25519 signing and checking with node:crypto key objects made once. libp2p's keys import themselves
 * from JWK on every sign and verify (about 50 µs each): with a signed request per blob, that was a
 * measurable share of a node's CPU in an image pull. Keys of other types go through libp2p as before.
 */
export class SigningKeys {
  readonly #key: PrivateKey;
  readonly #private: KeyObject | undefined;
  readonly #public = new Map<string, KeyObject>();

  constructor(key: PrivateKey) {
    this.#key = key;
    if (key.type === 'Ed25519') {
      // libp2p's raw Ed25519 private key is the 32-byte seed, then the 32-byte public key.
      const [seed, pub] = [key.raw.subarray(0, 32), key.raw.subarray(32)];
      this.#private = createPrivateKey({
        format: 'jwk',
        key: { kty: 'OKP', crv: 'Ed25519', d: base64url(seed), x: base64url(pub) },
      });
    }
  }

  async sign(payload: Uint8Array): Promise<Uint8Array> {
    return this.#private === undefined ? this.#key.sign(payload) : sign(null, payload, this.#private);
  }

  /** Whether `signature` over `payload` was made by the key `peer` names. */
  async verify(peer: PeerId, payload: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const key = peer.publicKey;
    if (key === undefined) return false;
    if (key.type !== 'Ed25519') return key.verify(payload, signature);
    const id = peer.toString();
    let object = this.#public.get(id);
    if (object === undefined) {
      object = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: base64url(key.raw) } });
      if (this.#public.size >= MAX_PUBLIC_KEYS) this.#public.clear();
      this.#public.set(id, object);
    }
    try {
      return verify(null, payload, object, signature);
    } catch {
      return false;
    }
  }
}
