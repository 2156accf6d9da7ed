import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NameInvalidError, TagInvalidError } from '../../../src/main/errors.js';
import {
  imageName,
  parseImageName,
  parseRegistryHost,
  parseRepository,
  parseTag,
  registryInPath,
} from '../../../src/main/oci/reference.js';

describe('repository names', () => {
  for (const good of ['library/nginx', 'a', 'a/b/c', 'my-org/my_app', 'a__b', 'x.y/z-1', 'a---b']) {
    it(`accepts ${good}`, () => assert.equal(parseRepository(good), good));
  }
  for (const bad of [
    '',
    'UPPER',
    'a//b',
    '/a',
    'a/',
    '../etc',
    'a/../b',
    'a_',
    '-a',
    'a b',
    'a%2Fb',
    'x'.repeat(256),
  ]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 20))}`, () =>
      assert.throws(() => parseRepository(bad), NameInvalidError));
  }
});

describe('tags', () => {
  it('accepts the distribution grammar', () => {
    assert.equal(parseTag('v1.2.3-rc_1'), 'v1.2.3-rc_1');
    assert.equal(parseTag('_x'), '_x');
  });
  for (const bad of ['', '.hidden', '-x', 'a:b', 'x'.repeat(129), 'a/b']) {
    it(`rejects ${JSON.stringify(bad.slice(0, 20))}`, () =>
      assert.throws(() => parseTag(bad), TagInvalidError));
  }
});

describe('registry hosts', () => {
  for (const good of ['docker.io', '127.0.0.1:5000', 'registry.k8s.io', '[::1]:5000', 'localhost']) {
    it(`accepts ${good}`, () => assert.equal(parseRegistryHost(good), good));
  }
  it('lowercases', () => assert.equal(parseRegistryHost('Docker.IO'), 'docker.io'));
  for (const bad of ['', 'a b', 'host:99999', 'host:', 'http://x', 'a/b', '-bad.io', 'x'.repeat(254)]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 20))}`, () =>
      assert.throws(() => parseRegistryHost(bad), NameInvalidError));
  }
  it('names images as containerd does', () => {
    assert.equal(imageName('docker.io', 'library/nginx', 'latest'), 'docker.io/library/nginx:latest');
  });
});

describe('image names (registry/repository:tag)', () => {
  it('parses the form containerd names images in', () => {
    assert.deepEqual(parseImageName('127.0.0.1:5000/team/app:v1.2'), {
      registry: '127.0.0.1:5000',
      repository: 'team/app',
      tag: 'v1.2',
    });
    assert.deepEqual(parseImageName('Docker.io/library/nginx:latest'), {
      registry: 'docker.io',
      repository: 'library/nginx',
      tag: 'latest',
    });
  });
  for (const bad of [
    'nginx:latest',
    'docker.io/library/nginx',
    '/x:1',
    'docker.io/UP:1',
    'docker.io/a:b:c!',
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseImageName(bad)));
  }
});

describe('a registry named in the path (Docker’s rule: a dot, or localhost)', () => {
  it('splits a first component that names a host', () => {
    assert.deepEqual(registryInPath('ghcr.io/owner/app'), { registry: 'ghcr.io', repository: 'owner/app' });
    assert.deepEqual(registryInPath('localhost/app'), { registry: 'localhost', repository: 'app' });
    assert.deepEqual(registryInPath('127.0.0.2/library/busybox'), {
      registry: '127.0.0.2',
      repository: 'library/busybox',
    });
  });
  it('leaves a name whose first component names no host', () => {
    assert.equal(registryInPath('library/nginx'), undefined);
    assert.equal(registryInPath('ghcr.io'), undefined);
    assert.equal(registryInPath('my_org/app'), undefined);
  });
});
