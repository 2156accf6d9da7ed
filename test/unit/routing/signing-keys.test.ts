import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { SigningKeys } from '../../../src/main/routing/libp2p/signing-keys.js';

describe('SigningKeys', () => {
  it('signs and checks exactly as libp2p does, with keys made once', async () => {
    const [mine, theirs] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')]);
    const keys = new SigningKeys(mine);
    const peers = new SigningKeys(theirs);
    const payload = new TextEncoder().encode('GET /v2/app/blobs/sha256:00 1796563512');
    const signature = await keys.sign(payload);
    // Ed25519 signatures are deterministic: the same bytes libp2p's own key makes.
    assert.deepEqual(Buffer.from(signature), Buffer.from(await mine.sign(payload)));
    assert.equal(await mine.publicKey.verify(payload, signature), true);
    const me = peerIdFromPrivateKey(mine);
    for (let i = 0; i < 2; i++) assert.equal(await peers.verify(me, payload, signature), true, `check ${i}`);
    assert.equal(await peers.verify(me, payload, await peers.sign(payload)), false, 'another key');
    const tampered = Buffer.from(payload);
    tampered.writeUInt8(tampered.readUInt8(0) ^ 1, 0);
    assert.equal(await peers.verify(me, tampered, signature), false, 'other bytes');
    assert.equal(await peers.verify(me, payload, signature.subarray(0, 10)), false, 'a short signature');
  });

  it('leaves keys of other types to libp2p', async () => {
    const key = await generateKeyPair('secp256k1');
    const keys = new SigningKeys(key);
    const payload = new TextEncoder().encode('payload');
    const signature = await keys.sign(payload);
    assert.equal(
      await new SigningKeys(await generateKeyPair('Ed25519')).verify(
        peerIdFromPrivateKey(key),
        payload,
        signature,
      ),
      true,
    );
  });
});
