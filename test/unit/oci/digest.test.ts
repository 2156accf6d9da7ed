import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DigestInvalidError } from '../../../src/main/errors.js';
import { digestHex, isDigest, parseDigest } from '../../../src/main/oci/digest.js';

const HEX = 'a'.repeat(64);

describe('parseDigest', () => {
  it('accepts sha256 and sha512 in canonical form', () => {
    assert.equal(parseDigest(`sha256:${HEX}`), `sha256:${HEX}`);
    assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`), `sha512:${'b'.repeat(128)}`);
    assert.equal(digestHex(parseDigest(`sha256:${HEX}`)), HEX);
  });

  for (const bad of [
    '',
    'sha256',
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'g'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`,
    `sha256:../${'a'.repeat(61)}`,
    `SHA256:${HEX}`,
    `sha256:${HEX}/..`,
  ]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 30))}`, () => {
      assert.throws(() => parseDigest(bad), DigestInvalidError);
      assert.equal(isDigest(bad), false);
    });
  }
});
