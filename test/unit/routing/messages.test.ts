import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/main/errors.js';
import { parseDigest } from '../../../src/main/oci/digest.js';
import { decodeMessage, encodeMessage, MAX_FUTURE_SKEW_MS } from '../../../src/main/routing/messages.js';
import { parsePsk } from '../../../src/main/routing/psk.js';

const NOW = 1_700_000_000_000;
const line = (value: unknown): string => JSON.stringify(value);

describe('peer messages', () => {
  it('round-trips both kinds through one JSON line', () => {
    const digest = parseDigest(`sha256:${'b'.repeat(64)}`);
    for (const message of [
      { kind: 'corrupt', digest },
      { kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: NOW },
      { kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: NOW, operator: true },
    ] as const) {
      const text = new TextDecoder().decode(encodeMessage(message));
      assert.ok(text.endsWith('\n'));
      assert.deepEqual(decodeMessage(text.trimEnd(), NOW), message);
    }
  });

  it('refuses malformed, oversized, non-canonical and far-future messages', () => {
    for (const text of [
      'not json',
      'null',
      line({ kind: 'corrupt', digest: 'sha256:abc' }),
      line({ kind: 'other' }),
      line({ kind: 'tag-invalidated', name: 'app:v1', at: NOW }),
      line({ kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: '1' }),
      line({ kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: -1 }),
      line({ kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: NOW + MAX_FUTURE_SKEW_MS + 1 }),
      line({ kind: 'tag-invalidated', name: `docker.io/${'a'.repeat(2000)}:v1`, at: NOW }),
      line({ kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: NOW, operator: false }),
      line({ kind: 'tag-invalidated', name: 'docker.io/library/app:v1', at: NOW, operator: 'yes' }),
    ]) {
      assert.equal(decodeMessage(text, NOW), undefined, text.slice(0, 80));
    }
  });
});

describe('private network key file', () => {
  const key = 'ab'.repeat(32);
  it('takes the /key/swarm/psk/1.0.0/ format, with CRLF and trailing space', () => {
    const psk = parsePsk(`/key/swarm/psk/1.0.0/\r\n/base16/\r\n${key.toUpperCase()}  \n`);
    assert.equal(new TextDecoder().decode(psk), `/key/swarm/psk/1.0.0/\n/base16/\n${key}`);
  });

  it('names the flag for every malformed key, never the key', () => {
    for (const text of [
      '',
      key,
      `/key/swarm/psk/1.0.0/\n/base64/\n${key}`,
      '/key/swarm/psk/1.0.0/\n/base16/\nabc',
    ]) {
      assert.throws(
        () => parsePsk(text),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.startsWith('--p2p-psk-file:') &&
          !err.message.includes(key),
      );
    }
  });
});
