import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IDENTITY_FILE, loadIdentity } from '../../../src/main/routing/libp2p/identity.js';
import { routingCid } from '../../../src/main/routing/libp2p/keys.js';

/** RFC 4648 base32, lowercase, no padding: the multibase 'b' alphabet, written out independently. */
function base32(bytes: Uint8Array): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

describe('routing keys', () => {
  it('are CIDv1, raw codec, sha256 multihash over the key text', async () => {
    for (const key of [`sha256:${'a'.repeat(64)}`, 'docker.io/library/nginx:latest']) {
      const digest = createHash('sha256').update(key, 'utf8').digest();
      // 0x01 CIDv1, 0x55 raw, 0x12 sha2-256, 0x20 length 32.
      const expected = `b${base32(Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), digest]))}`;
      assert.equal((await routingCid(key)).toString(), expected);
    }
  });
});

describe('node identity', () => {
  it('is created once with mode 0600 and is the same after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-identity-'));
    try {
      const first = await loadIdentity(join(dir, 'data'));
      const mode = (await stat(join(dir, 'data', IDENTITY_FILE))).mode & 0o777;
      assert.equal(mode, 0o600);
      const again = await loadIdentity(join(dir, 'data'));
      assert.equal(first.type, 'Ed25519');
      assert.ok(first.equals(again));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
