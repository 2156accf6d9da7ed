import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { smallImage } from '../harness/fixtures.js';
import { Child } from '../harness/process.js';
import { CLI, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

async function shoal(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string }> {
  const child = new Child(process.execPath, [CLI, ...args], { ...process.env, ...env });
  const code = await child.finished;
  return { code, output: child.output };
}

describe('shoal CLI', { timeout: 120_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await shortTempDir('shoal-cli');
  });
  after(() => removeDir(dir));

  it('prints help for the tool and for each command', async () => {
    const top = await shoal(['--help']);
    assert.equal(top.code, 0);
    for (const command of ['registry', 'configuration', 'cleanup', 'import'])
      assert.match(top.output, new RegExp(`\\b${command}\\b`));
    const registry = await shoal(['registry', '--help']);
    assert.equal(registry.code, 0);
    assert.match(registry.output, /--registry-addr {2}\[\$REGISTRY_ADDR\]/);
    const configuration = await shoal(['configuration', '-h']);
    assert.match(configuration.output, /--containerd-registry-config-path/);
  });

  for (const [args, flag] of [
    [['registry', '--no-such-flag'], '--no-such-flag'],
    [['registry', '--mirror-resolve-timeout', 'soon'], '--mirror-resolve-timeout'],
    [['registry', '--registry-addr', '5000'], '--registry-addr'],
    [['registry', '--registry-filters', '[oops'], '--registry-filters'],
    // Gone with the second port: an old manifest fails loudly, naming what replaced it.
    [
      ['registry', '--registry-blob-addr', ':5003'],
      '--registry-blob-addr: removed: --registry-addr serves blob bytes',
    ],
    // Values that do not parse, not timings a node runs with.
    [['registry', '--shutdown-grace', 'forever'], '--shutdown-grace'],
    [['registry', '--idle-timeout', '-1s'], '--idle-timeout'],
    [['registry', '--upstream-min-rate', 'fast'], '--upstream-min-rate'],
    [['configuration', '--mirror-targets', 'not-a-url'], '--mirror-targets'],
    [['configuration', '--containerd-registry-config-path', '/tmp/x'], '--mirror-targets'],
    [['import', '--data-dir', '/tmp/x', '/nowhere'], '--repository'],
    [['invalidate', 'nginx:latest'], 'invalidate: "nginx:latest" is not <registry>/<repository>:<tag>'],
    [['invalidate'], 'invalidate: name exactly one'],
    [
      ['invalidate', '--admin-addr', '127.0.0.1:1', 'docker.io/library/nginx:1'],
      '--admin-addr: no shoal answered',
    ],
  ] as const) {
    it(`exits 2 with one line naming ${flag} for ${args.join(' ')}`, async () => {
      const result = await shoal([...args]);
      assert.equal(result.code, 2);
      assert.equal(result.output.trim().split('\n').length, 1, result.output);
      assert.match(result.output, new RegExp(`^shoal: ${flag}`));
    });
  }

  it('refuses the removed blob port from the environment too (an old DaemonSet sets it)', async () => {
    const result = await shoal(['registry', '--store', 'embedded', '--data-dir', dir], {
      REGISTRY_BLOB_ADDR: ':5003',
    });
    assert.equal(result.code, 2);
    assert.match(result.output, /^shoal: --registry-blob-addr: removed: .*\(from \$REGISTRY_BLOB_ADDR\)$/m);
  });

  it('exits 2 for an unknown command and for no command', async () => {
    assert.equal((await shoal(['serve'])).code, 2);
    assert.equal((await shoal([])).code, 2);
  });

  it('fails loudly when --store containerd cannot reach containerd', async () => {
    const result = await shoal([
      'registry',
      '--store',
      'containerd',
      '--containerd-sock',
      join(dir, 'absent.sock'),
      '--registry-addr',
      '127.0.0.1:0',
      '--metrics-addr',
      '127.0.0.1:0',
      '--store-timeout',
      '1s',
    ]);
    assert.equal(result.code, 2);
    assert.match(result.output, /--containerd-sock: containerd does not answer/);
  });

  // Regression: uWS sets SO_REUSEPORT, so a second shoal on a taken port used to start and split traffic.
  it('refuses to start a second node on a port another node holds, naming the flag', async () => {
    const running = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'first')]);
    await running.start();
    try {
      for (const [flag, port] of [
        ['--registry-addr', running.port],
        ['--admin-addr', running.adminPort],
        ['--metrics-addr', running.metricsPort],
      ] as const) {
        const addresses = new Map([
          ['--registry-addr', '127.0.0.1:0'],
          ['--admin-addr', '127.0.0.1:0'],
          ['--metrics-addr', '127.0.0.1:0'],
        ]);
        addresses.set(flag, `127.0.0.1:${port}`);
        const result = await shoal([
          'registry',
          '--store',
          'embedded',
          '--data-dir',
          join(dir, 'second'),
          ...[...addresses].flat(),
        ]);
        assert.equal(result.code, 2, result.output);
        assert.match(
          result.output,
          new RegExp(`^shoal: ${flag}: cannot listen on 127\\.0\\.0\\.1:${port}$`, 'm'),
        );
      }
    } finally {
      await running.stop();
    }
  });

  it('writes containerd configuration and cleans it up again', async () => {
    const certs = join(dir, 'certs.d');
    await mkdir(join(certs, 'docker.io'), { recursive: true });
    await writeFile(join(certs, 'docker.io', 'hosts.toml'), 'server = "https://registry-1.docker.io"\n');
    const result = await shoal([
      'configuration',
      '--containerd-registry-config-path',
      certs,
      '--mirrored-registries',
      'https://docker.io,http://127.0.0.1:5000',
      '--mirror-targets',
      'http://127.0.0.1:5000',
      '--resolve-tags=false',
    ]);
    assert.equal(result.code, 0, result.output);
    assert.deepEqual((await readdir(certs)).sort(), ['127.0.0.1:5000', '_backup', 'docker.io']);
    assert.match(await readFile(join(certs, 'docker.io', 'hosts.toml'), 'utf8'), /capabilities = \["pull"\]/);
    assert.equal((await shoal(['cleanup', '--containerd-registry-config-path', certs])).code, 0);
    assert.deepEqual(await readdir(certs), ['docker.io']);
    assert.equal(
      await readFile(join(certs, 'docker.io', 'hosts.toml'), 'utf8'),
      'server = "https://registry-1.docker.io"\n',
    );
  });

  it('imports a layout into the embedded store and serves it; --store auto falls back to embedded', async () => {
    const image = await smallImage('cli-import');
    const data = join(dir, 'data');
    const imported = await shoal(['import', '--data-dir', data, '--repository', 'library/app', image.dir]);
    assert.equal(imported.code, 0, imported.output);
    assert.match(imported.output, /tags: small/);
    const server = new ShoalProcess([
      '--store',
      'auto',
      '--containerd-sock',
      join(dir, 'absent.sock'),
      '--data-dir',
      data,
    ]);
    await server.start();
    try {
      // podman style: no ns, GET by tag; the default registry is docker.io.
      const response = await fetch(`${server.url}/v2/library/app/manifests/${image.tag}`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('docker-content-digest'), image.image.manifest.digest);
      const layer = image.image.layers[0];
      assert.ok(layer);
      assert.equal((await fetch(`${server.url}/v2/library/app/blobs/${layer.digest}`)).status, 200);
    } finally {
      await server.stop();
    }
    assert.match(server.output, /falls back to the embedded store/);
  });
});
