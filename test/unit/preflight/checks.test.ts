import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluate, minorVersion, type Observed, originOf } from '../../../src/main/preflight/checks.js';

/** A node whose containerd is set up right: every check passes. */
function healthy(): Observed {
  return {
    store: { requested: 'containerd', serving: 'containerd' },
    socket: '/run/containerd/containerd.sock',
    containerd: { version: '1.7.22' },
    namespace: { name: 'k8s.io', exists: true },
    content: { path: '/var/lib/containerd/io.containerd.content.v1.content', error: undefined },
    settings: {
      from: 'the CRI plugin’s status',
      configPath: '/etc/containerd/certs.d',
      discardUnpackedLayers: false,
      useLocalImagePull: undefined,
    },
    configDir: '/etc/containerd/certs.d',
    hosts: [
      {
        registry: 'docker.io',
        found: {
          file: '/etc/containerd/certs.d/docker.io/hosts.toml',
          mirrors: [{ url: 'http://10.0.0.5:5000', capabilities: ['pull', 'resolve'] }],
        },
      },
    ],
    targets: { origins: ['http://10.0.0.5:5000'] },
    resolveTags: true,
  };
}

const failed = (seen: Observed) =>
  Object.fromEntries(
    evaluate(seen)
      .filter((result) => !result.ok)
      .map((result) => [result.check, result]),
  );

describe('preflight checks', () => {
  it('pass a node set up right, and name every check they made', () => {
    const results = evaluate(healthy());
    assert.deepEqual(
      results.map((result) => [result.check, result.ok]),
      [
        ['store', true],
        ['containerd_socket', true],
        ['containerd_namespace', true],
        ['content_directory', true],
        ['registry_config_path', true],
        ['hosts_toml', true],
        ['discard_unpacked_layers', true],
      ],
    );
  });

  it('report each problem with the setting that fixes it', () => {
    const seen = healthy();
    seen.settings = {
      ...(seen.settings as object),
      configPath: '',
      discardUnpackedLayers: true,
    } as Observed['settings'];
    seen.namespace = { name: 'k8s.io', exists: false };
    seen.content = { path: '/c', error: 'EACCES' };
    const problems = failed(seen);
    assert.deepEqual(Object.keys(problems).sort(), [
      'containerd_namespace',
      'content_directory',
      'discard_unpacked_layers',
      'registry_config_path',
    ]);
    assert.match(problems.registry_config_path?.summary ?? '', /not set/);
    assert.match(problems.registry_config_path?.fix ?? '', /config_path = "\/etc\/containerd\/certs\.d"/);
    assert.match(problems.discard_unpacked_layers?.fix ?? '', /discard_unpacked_layers = false/);
    assert.match(problems.containerd_namespace?.fix ?? '', /k8s\.io/);
    assert.match(problems.content_directory?.summary ?? '', /EACCES/);
  });

  it('finds containerd reading hosts.toml from another directory', () => {
    const seen = healthy();
    seen.settings = {
      ...(seen.settings as object),
      configPath: '/etc/docker/certs.d',
    } as Observed['settings'];
    assert.match(
      failed(seen).registry_config_path?.summary ?? '',
      /from \/etc\/docker\/certs\.d .* not from \/etc\/containerd\/certs\.d/,
    );
    // Several directories, ours among them, is fine.
    seen.settings = {
      ...(seen.settings as object),
      configPath: '/etc/containerd/certs.d:/etc/docker/certs.d',
    } as Observed['settings'];
    assert.equal(failed(seen).registry_config_path, undefined);
  });

  it('finds a hosts.toml that is missing, points elsewhere, or may not resolve tags', () => {
    const seen = healthy();
    seen.hosts = [
      { registry: 'docker.io', found: { file: undefined, mirrors: [] } },
      {
        registry: 'ghcr.io',
        found: {
          file: '/d/ghcr.io/hosts.toml',
          mirrors: [{ url: 'http://10.0.0.9:5000', capabilities: ['pull'] }],
        },
      },
      {
        registry: 'quay.io',
        found: {
          file: '/d/quay.io/hosts.toml',
          mirrors: [{ url: 'http://10.0.0.5:5000', capabilities: ['pull'] }],
        },
      },
    ];
    const summary = failed(seen).hosts_toml?.summary ?? '';
    assert.match(summary, /docker\.io: no hosts\.toml/);
    assert.match(
      summary,
      /ghcr\.io: \/d\/ghcr\.io\/hosts\.toml lists http:\/\/10\.0\.0\.9:5000, not this node/,
    );
    assert.match(summary, /quay\.io: http:\/\/10\.0\.0\.5:5000 may only pull/);
    assert.match(failed(seen).hosts_toml?.fix ?? '', /shoal configuration/);
    // Without --resolve-tags, pull alone is what shoal writes.
    seen.resolveTags = false;
    assert.doesNotMatch(failed(seen).hosts_toml?.summary ?? '', /quay\.io/);
  });

  it('takes any http mirror on the registry port as this node when it listens on every interface', () => {
    const seen = healthy();
    seen.targets = { port: 5000 };
    assert.equal(failed(seen).hosts_toml, undefined);
    seen.targets = { port: 5001 };
    assert.ok(failed(seen).hosts_toml);
  });

  it('says so loudly when --store auto fell back to an empty embedded store', () => {
    const seen = healthy();
    seen.store = { requested: 'auto', serving: 'embedded' };
    seen.containerd = { error: 'connect ENOENT /run/containerd/containerd.sock' };
    const problems = failed(seen);
    assert.deepEqual(Object.keys(problems).sort(), ['containerd_socket', 'store']);
    assert.match(problems.store?.fix ?? '', /--containerd-sock/);
  });

  it('checks nothing of containerd for an embedded store asked for on purpose', () => {
    const seen = healthy();
    seen.store = { requested: 'embedded', serving: 'embedded' };
    assert.deepEqual(
      evaluate(seen).map((result) => [result.check, result.ok]),
      [['store', true]],
    );
  });

  it('asks for use_local_image_pull on containerd 2.1 and later only', () => {
    const seen = healthy();
    const checks = (version: string) => {
      seen.containerd = { version };
      return evaluate(seen).map((result) => result.check);
    };
    assert.ok(!checks('2.0.5').includes('local_image_pull'));
    assert.ok(checks('v2.1.0').includes('local_image_pull'));
    assert.match(failed(seen).local_image_pull?.fix ?? '', /use_local_image_pull = true/);
    seen.settings = { ...(seen.settings as object), useLocalImagePull: true } as Observed['settings'];
    assert.equal(failed(seen).local_image_pull, undefined);
  });

  it('cannot tell config_path when neither the CRI plugin nor the file says, and says how to let it', () => {
    const seen = healthy();
    seen.settings = { error: 'unknown service runtime.v1.RuntimeService' };
    assert.match(failed(seen).registry_config_path?.fix ?? '', /--containerd-config/);
  });

  it('reads versions and origins the way containerd writes them', () => {
    assert.deepEqual(minorVersion('1.6.20~ds1'), [1, 6]);
    assert.deepEqual(minorVersion('v2.1.4'), [2, 1]);
    assert.equal(minorVersion('devel'), undefined);
    assert.equal(originOf('http://10.0.0.5:5000/'), 'http://10.0.0.5:5000');
    assert.equal(originOf('http://node'), 'http://node:80');
    assert.equal(originOf('http://[fd00::1]:5000'), 'http://[fd00::1]:5000');
  });
});
