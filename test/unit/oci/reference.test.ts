import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NameInvalidError, TagInvalidError } from '../../../src/main/errors.js';
import {
  imageName,
  parseImageName,
  parseImageReference,
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

describe('parseImageReference: a pod spec image, read as the kubelet reads it', () => {
  const D = `sha256:${'ab'.repeat(32)}`;
  it('puts names without a registry on Docker Hub, under library/ when they have no slash', () => {
    assert.deepEqual(parseImageReference('nginx'), {
      registry: 'docker.io',
      repository: 'library/nginx',
      tag: 'latest',
      tagImplied: true,
      digest: undefined,
    });
    assert.equal(parseImageReference('bitnami/redis:7')?.repository, 'bitnami/redis');
    assert.equal(parseImageReference('bitnami/redis:7')?.tag, '7');
    assert.equal(parseImageReference('index.docker.io/nginx:1')?.registry, 'docker.io');
    assert.equal(parseImageReference('index.docker.io/nginx:1')?.repository, 'library/nginx');
  });
  it('takes a first component with a dot, a port or localhost as the registry', () => {
    assert.equal(parseImageReference('ghcr.io/o/app:v1')?.registry, 'ghcr.io');
    assert.equal(parseImageReference('127.0.0.1:5000/app')?.registry, '127.0.0.1:5000');
    assert.equal(parseImageReference('127.0.0.1:5000/app')?.tag, 'latest');
    assert.equal(parseImageReference('localhost/app:2')?.registry, 'localhost');
  });
  it('reads a digest, with or without a tag before it', () => {
    assert.equal(parseImageReference(`nginx@${D}`)?.digest, D);
    assert.equal(parseImageReference(`ghcr.io/o/app:v1@${D}`)?.tag, 'v1');
    assert.equal(parseImageReference(`ghcr.io/o/app:v1@${D}`)?.digest, D);
  });
  it('refuses what is not a reference', () => {
    for (const bad of ['', 'UPPER/case', 'nginx:', 'nginx@sha256:short', 'a//b', ':tag', 'x'.repeat(2000)]) {
      assert.equal(parseImageReference(bad), undefined, bad);
    }
  });
});
