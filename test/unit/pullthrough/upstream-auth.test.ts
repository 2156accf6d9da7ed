import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../../src/main/errors.js';
import { upstreamOrigin } from '../../../src/main/pullthrough/upstream.js';
import { CredentialStore, parseChallenge } from '../../../src/main/pullthrough/upstream-auth.js';

describe('upstream registry addressing', () => {
  it('sends docker.io to registry-1.docker.io over https, and insecure hosts over http', () => {
    const insecure = new Set(['127.0.0.1:5000']);
    assert.equal(upstreamOrigin('docker.io', insecure), 'https://registry-1.docker.io');
    assert.equal(upstreamOrigin('ghcr.io', insecure), 'https://ghcr.io');
    assert.equal(upstreamOrigin('127.0.0.1:5000', insecure), 'http://127.0.0.1:5000');
  });
});

describe('parseChallenge', () => {
  it('reads Bearer realm, service and scope, quoted or not', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
      ),
      { scheme: 'bearer', realm: 'https://auth.example/token', service: 'registry.example' },
    );
    assert.deepEqual(parseChallenge('bearer realm=https://auth.example/token'), {
      scheme: 'bearer',
      realm: 'https://auth.example/token',
      service: undefined,
    });
    assert.deepEqual(parseChallenge('Basic realm="registry"'), { scheme: 'basic' });
  });

  it('refuses what it cannot answer', () => {
    assert.equal(parseChallenge(undefined), undefined);
    assert.equal(parseChallenge('Negotiate abc'), undefined);
    assert.equal(parseChallenge('Bearer service="x"'), undefined, 'no realm');
    assert.equal(parseChallenge('Bearer realm="file:///etc/passwd"'), undefined, 'not an http(s) realm');
  });
});

describe('CredentialStore', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-creds-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads every form a docker config.json uses', async () => {
    const path = join(dir, 'config.json');
    await writeFile(
      path,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw:with:colons').toString('base64') },
          'ghcr.io': { username: 'gh', password: 'token' },
          'quay.io': { identitytoken: 'refresh' },
          'registry.example': { registrytoken: 'bearer' },
        },
      }),
    );
    const store = await CredentialStore.load(path);
    assert.deepEqual(store.get('docker.io'), { kind: 'basic', username: 'hub', password: 'pw:with:colons' });
    assert.deepEqual(store.get('ghcr.io'), { kind: 'basic', username: 'gh', password: 'token' });
    assert.deepEqual(store.get('quay.io'), { kind: 'identity-token', token: 'refresh' });
    assert.deepEqual(store.get('registry.example'), { kind: 'registry-token', token: 'bearer' });
    assert.equal(store.get('elsewhere.example'), undefined);
  });

  it('names the flag, never the secret, when the file is unusable', async () => {
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{"auths": {"ghcr.io": {"auth": "bm9jb2xvbg=="}}}'); // "nocolon"
    await assert.rejects(CredentialStore.load(broken), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^--registry-credentials: /);
      assert.doesNotMatch(err.message, /nocolon|bm9jb2xvbg/);
      return true;
    });
    await writeFile(broken, 'not json');
    await assert.rejects(CredentialStore.load(broken), /--registry-credentials: cannot read/);
    await assert.rejects(CredentialStore.load(join(dir, 'absent.json')), /--registry-credentials/);
  });
});
