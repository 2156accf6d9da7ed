import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CriConfig } from '../../../src/main/containerd/client.js';
import { type ContainerdProbe, type ObserveInit, observe } from '../../../src/main/preflight/observe.js';
import { removeDir, shortTempDir } from '../../harness/tmp.js';

/** containerd as preflight asks it: a version, namespaces, and what its CRI plugin says. */
function probe(cri: CriConfig, version = '1.7.22'): ContainerdProbe {
  return {
    version: async () => version,
    namespaceExists: async (name) => name === 'k8s.io',
    criConfig: async () => cri,
  };
}

describe('what preflight observes', () => {
  let dir: string;
  let init: ObserveInit;
  before(async () => {
    dir = await shortTempDir('shoal-observe');
    await mkdir(join(dir, 'content', 'blobs', 'sha256'), { recursive: true });
    init = {
      store: { requested: 'containerd', serving: 'containerd' },
      socket: '/run/containerd/containerd.sock',
      namespace: 'k8s.io',
      contentPath: join(dir, 'content'),
      configDir: join(dir, 'certs.d'),
      configFile: join(dir, 'config.toml'),
      mirroredRegistries: ['docker.io'],
      targets: { port: 5000 },
      resolveTags: true,
    };
  });
  after(() => removeDir(dir));

  it('takes containerd 1.x’s settings from its CRI status alone', async () => {
    const status = JSON.stringify({
      containerd: { discardUnpackedLayers: true },
      registry: { configPath: '/etc/containerd/certs.d' },
    });
    const seen = await observe(probe({ config: status }), init);
    assert.deepEqual(seen.settings, {
      from: 'the CRI plugin’s status',
      configPath: '/etc/containerd/certs.d',
      discardUnpackedLayers: true,
      useLocalImagePull: undefined,
    });
    assert.deepEqual(seen.namespace, { name: 'k8s.io', exists: true });
    assert.equal(seen.content.error, undefined);
  });

  it('completes containerd 2.x’s runtime-only status from the config file', async () => {
    await writeFile(
      init.configFile,
      'version = 3\n[plugins."io.containerd.cri.v1.images"]\ndiscard_unpacked_layers = false\nuse_local_image_pull = true\n[plugins."io.containerd.cri.v1.images".registry]\nconfig_path = "/etc/containerd/certs.d"\n',
    );
    const status = JSON.stringify({ containerd: { defaultRuntimeName: 'runc' } });
    const seen = await observe(probe({ config: status }, '2.1.4'), init);
    assert.deepEqual(seen.settings, {
      from: `the CRI plugin’s status and ${init.configFile}`,
      configPath: '/etc/containerd/certs.d',
      discardUnpackedLayers: false,
      useLocalImagePull: true,
    });
  });

  it('reads the file when the CRI plugin does not answer, and says why when neither tells', async () => {
    const fromFile = await observe(probe({ error: 'unknown service runtime.v1.RuntimeService' }), init);
    assert.equal((fromFile.settings as { from: string }).from, init.configFile);
    const neither = await observe(probe({ error: 'unknown service runtime.v1.RuntimeService' }), {
      ...init,
      configFile: join(dir, 'missing.toml'),
    });
    assert.match(
      (neither.settings as { error: string }).error,
      /the CRI plugin did not say \(unknown service runtime\.v1\.RuntimeService\), and .*missing\.toml could not be read/,
    );
  });

  it('asks nothing more of a containerd that does not answer, and never throws', async () => {
    const down: ContainerdProbe = {
      version: async () => {
        throw new Error('connect ENOENT');
      },
      namespaceExists: async () => {
        throw new Error('should not be asked');
      },
      criConfig: async () => {
        throw new Error('should not be asked');
      },
    };
    const seen = await observe(down, { ...init, contentPath: join(dir, 'nowhere') });
    assert.deepEqual(seen.containerd, { error: 'connect ENOENT' });
    assert.equal(seen.namespace.exists, undefined);
    assert.deepEqual(seen.settings, { error: 'containerd does not answer' });
    assert.equal(seen.content.error, 'ENOENT');
    assert.deepEqual(seen.hosts, [{ registry: 'docker.io', found: { file: undefined, mirrors: [] } }]);
  });
});
