import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type K8sObject, render } from '../harness/k8s.js';
import { type Container, containerRunning, DOWNWARD, environment } from '../harness/k8s-objects.js';
import { run } from '../harness/process.js';
import { CLI } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// The init container and the cleanup DaemonSet, as rendered, run through the real CLI against a copy of a
// node's certs.d, with the env the kubelet would give them.

/** Every file under `dir` (relative path → bytes). */
async function tree(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(dir.length + 1), await readFile(path));
  }
  return files;
}

async function runContainer(
  container: Container,
  objects: readonly K8sObject[],
  certsDir: string,
  downward: Record<string, string> = { ...DOWNWARD },
): Promise<string> {
  const env = environment(container, objects, downward);
  env.CONTAINERD_REGISTRY_CONFIG_PATH = certsDir;
  return run(process.execPath, [CLI, ...(container.args ?? [])], 30_000, { PATH: process.env.PATH, ...env });
}

/** What a node may already hold: a mirror of its own for docker.io, a CA file, a default. */
const ORIGINAL: Record<string, string> = {
  'docker.io/hosts.toml':
    'server = "https://registry-1.docker.io"\n\n[host."https://corp-mirror.example"]\n  capabilities = ["pull"]\n',
  'docker.io/ca.crt': '-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n',
  '_default/hosts.toml': '[host."https://fallback.example"]\n  capabilities = ["pull", "resolve"]\n',
  'quay.io/hosts.toml': 'server = "https://quay.io"\n',
};

async function nodeCerts(dir: string): Promise<string> {
  const certs = join(dir, 'certs.d');
  for (const [path, text] of Object.entries(ORIGINAL)) {
    await mkdir(join(certs, path, '..'), { recursive: true });
    await writeFile(join(certs, path), text);
  }
  return certs;
}

describe('the init container configures a node’s certs.d, and the cleanup DaemonSet restores it', () => {
  it('writes the mirror for every registry, keeps the originals, and cleanup puts them back byte for byte', async () => {
    const dir = await shortTempDir('shoal-certs');
    try {
      const certs = await nodeCerts(dir);
      const before = await tree(certs);
      const install = await render('k8s');
      const init = containerRunning(install, 'configuration');
      assert.ok(init);
      // A pod restart runs the init container again: the backup must survive it.
      await runContainer(init, install, certs);
      await runContainer(init, install, certs);
      const after = await tree(certs);
      const mirrored = environment(init, install).MIRRORED_REGISTRIES?.split(',') ?? [];
      assert.equal(mirrored.length, 7);
      for (const registry of mirrored) {
        const toml = after.get(`${new URL(registry).host}/hosts.toml`)?.toString() ?? '';
        assert.match(toml, /\[host\."http:\/\/10\.1\.2\.3:5000"\]/, registry);
        assert.match(toml, /dial_timeout = "200ms"/, registry);
      }
      for (const [path, bytes] of before)
        assert.deepEqual(after.get(`_backup/${path}`), bytes, `_backup/${path}`);
      const cleanupObjects = await render('k8s/cleanup');
      const cleanup = containerRunning(cleanupObjects, 'cleanup');
      assert.ok(cleanup);
      await runContainer(cleanup, cleanupObjects, certs);
      assert.deepEqual(await tree(certs), before);
    } finally {
      await removeDir(dir);
    }
  });

  // Regression: on a node with an IPv6 status.hostIP the init container exited 2 on
  // `invalid URL "http://fd00::1:5000"`; dual-stack and IPv6-only clusters give pods such addresses.
  it('on a node whose status.hostIP is IPv6, writes a bracketed mirror address', async () => {
    const dir = await shortTempDir('shoal-certs-v6');
    try {
      const certs = await nodeCerts(dir);
      const install = await render('k8s');
      const init = containerRunning(install, 'configuration');
      assert.ok(init);
      await runContainer(init, install, certs, { ...DOWNWARD, 'status.hostIP': 'fd00::1' });
      const after = await tree(certs);
      for (const registry of environment(init, install).MIRRORED_REGISTRIES?.split(',') ?? []) {
        const toml = after.get(`${new URL(registry).host}/hosts.toml`)?.toString() ?? '';
        assert.match(toml, /\[host\."http:\/\/\[fd00::1\]:5000"\]/, registry);
      }
    } finally {
      await removeDir(dir);
    }
  });
});
