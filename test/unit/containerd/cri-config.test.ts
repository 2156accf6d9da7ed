import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { criSettingsFromStatus, readCriSettingsFile } from '../../../src/main/containerd/cri-config.js';
import { readRegistryHosts } from '../../../src/main/containerd/hosts.js';
import { removeDir, shortTempDir } from '../../harness/tmp.js';

describe('containerd’s CRI settings', () => {
  let dir: string;
  before(async () => {
    dir = await shortTempDir('shoal-cri-config');
  });
  after(() => removeDir(dir));

  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, text);
    return path;
  };

  it('reads containerd 1.x’s verbose CRI status (what crictl info prints)', () => {
    const status = JSON.stringify({
      containerd: { snapshotter: 'overlayfs', discardUnpackedLayers: false },
      registry: { configPath: '/etc/containerd/certs.d', mirrors: null },
    });
    assert.deepEqual(criSettingsFromStatus(status), {
      from: 'the CRI plugin’s status',
      configPath: '/etc/containerd/certs.d',
      discardUnpackedLayers: false,
      useLocalImagePull: undefined,
    });
    // containerd 2.x reports only its runtime half there: the image settings are unknown, not off.
    const runtimeOnly = criSettingsFromStatus(JSON.stringify({ containerd: { defaultRuntimeName: 'runc' } }));
    assert.deepEqual([runtimeOnly.configPath, runtimeOnly.discardUnpackedLayers], [undefined, undefined]);
  });

  it('reads each version of config.toml', async () => {
    const v1 = await file(
      'v1.toml',
      '[plugins.cri.registry]\nconfig_path = "/a"\n[plugins.cri.containerd]\ndiscard_unpacked_layers = true\n',
    );
    const v2 = await file(
      'v2.toml',
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/b"\n',
    );
    const v3 = await file(
      'v3.toml',
      [
        'version = 3',
        "[plugins.'io.containerd.cri.v1.images']",
        'discard_unpacked_layers = false',
        'use_local_image_pull = true',
        "[plugins.'io.containerd.cri.v1.images'.registry]",
        "config_path = '/c'",
        '',
      ].join('\n'),
    );
    const pick = async (path: string) => {
      const { configPath, discardUnpackedLayers, useLocalImagePull } = await readCriSettingsFile(path);
      return [configPath, discardUnpackedLayers, useLocalImagePull];
    };
    assert.deepEqual(await pick(v1), ['/a', true, undefined]);
    assert.deepEqual(await pick(v2), ['/b', undefined, undefined]);
    assert.deepEqual(await pick(v3), ['/c', false, true]);
  });

  it('merges the files `imports` names on top of the main one, in order', async () => {
    await file(
      'conf.d/10-registry.toml',
      'version = 3\n[plugins."io.containerd.cri.v1.images".registry]\nconfig_path = "/from-import"\n',
    );
    await file(
      'conf.d/20-pull.toml',
      'version = 3\n[plugins."io.containerd.cri.v1.images"]\nuse_local_image_pull = true\n',
    );
    const main = await file(
      'main.toml',
      'version = 3\nimports = ["conf.d/*.toml"]\n[plugins."io.containerd.cri.v1.images".registry]\nconfig_path = "/main"\n',
    );
    const settings = await readCriSettingsFile(main);
    assert.deepEqual([settings.configPath, settings.useLocalImagePull], ['/from-import', true]);
  });

  it('refuses a file it cannot parse, naming why', async () => {
    const broken = await file('broken.toml', 'version = 2\n[plugins\n');
    await assert.rejects(readCriSettingsFile(broken));
    await assert.rejects(readCriSettingsFile(join(dir, 'missing.toml')), /ENOENT/);
  });

  it('reads the mirrors a hosts.toml lists, falling back to _default as containerd does', async () => {
    await file(
      'certs.d/docker.io/hosts.toml',
      'server = "https://registry-1.docker.io"\n\n[host."http://10.0.0.5:5000"]\n  capabilities = ["pull", "resolve"]\n[host."https://mirror.example"]\n',
    );
    await file('certs.d/_default/hosts.toml', '[host."http://10.0.0.5:5000"]\n  capabilities = ["pull"]\n');
    const certs = join(dir, 'certs.d');
    assert.deepEqual(await readRegistryHosts(certs, 'docker.io'), {
      file: join(certs, 'docker.io', 'hosts.toml'),
      mirrors: [
        { url: 'http://10.0.0.5:5000', capabilities: ['pull', 'resolve'] },
        // No capabilities: containerd's default.
        { url: 'https://mirror.example', capabilities: ['pull', 'resolve'] },
      ],
    });
    assert.equal((await readRegistryHosts(certs, 'ghcr.io')).file, join(certs, '_default', 'hosts.toml'));
    assert.deepEqual(await readRegistryHosts(join(dir, 'nowhere'), 'ghcr.io'), {
      file: undefined,
      mirrors: [],
    });
    await file('certs.d/quay.io/hosts.toml', '[host."http://x"\n');
    assert.match((await readRegistryHosts(certs, 'quay.io')).error ?? '', /not valid TOML/);
  });
});
