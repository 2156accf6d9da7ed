import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  cleanupHostsConfig,
  type HostsConfigInit,
  hostTables,
  renderHostsToml,
  writeHostsConfig,
} from '../../../src/main/containerd/hosts.js';
import { ConfigError } from '../../../src/main/errors.js';

const EXISTING = `server = "https://registry-1.docker.io"

[host."https://mirror.example.internal"]
  capabilities = ["pull"]
`;

describe('hosts.toml', () => {
  let dir: string;
  const init = (overrides: Partial<HostsConfigInit> = {}): HostsConfigInit => ({
    configPath: dir,
    mirroredRegistries: [new URL('https://docker.io'), new URL('http://127.0.0.1:5000')],
    mirrorTargets: [new URL('http://127.0.0.1:30020'), new URL('http://127.0.0.1:30021')],
    resolveTags: true,
    prependExisting: false,
    dialTimeoutMs: 200,
    ...overrides,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-hosts-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('renders server, one host table per target with capabilities and dial_timeout', () => {
    const toml = renderHostsToml(new URL('https://docker.io'), init(), '');
    assert.equal(
      toml,
      [
        'server = "https://registry-1.docker.io"',
        '',
        '[host."http://127.0.0.1:30020"]',
        '  capabilities = ["pull", "resolve"]',
        '  dial_timeout = "200ms"',
        '',
        '[host."http://127.0.0.1:30021"]',
        '  capabilities = ["pull", "resolve"]',
        '  dial_timeout = "200ms"',
        '',
      ].join('\n'),
    );
  });

  it('drops resolve without --resolve-tags and keeps other registries as they are', () => {
    const toml = renderHostsToml(
      new URL('http://127.0.0.1:5000'),
      init({ resolveTags: false, dialTimeoutMs: 2000 }),
      '',
    );
    assert.match(toml, /^server = "http:\/\/127.0.0.1:5000"/);
    assert.match(toml, /capabilities = \["pull"\]\n {2}dial_timeout = "2s"/);
  });

  it('writes one directory per registry, byte-identical on a second run', async () => {
    const files = await writeHostsConfig(init());
    assert.deepEqual(files, [
      join(dir, 'docker.io', 'hosts.toml'),
      join(dir, '127.0.0.1:5000', 'hosts.toml'),
    ]);
    const first = await readFile(files[0] as string);
    await writeHostsConfig(init());
    assert.deepEqual(await readFile(files[0] as string), first);
    assert.deepEqual((await readdir(dir)).sort(), ['127.0.0.1:5000', '_backup', 'docker.io']);
  });

  it('writes _default without a server when no registries are listed', async () => {
    const [file] = await writeHostsConfig(init({ mirroredRegistries: [] }));
    assert.equal(file, join(dir, '_default', 'hosts.toml'));
    const toml = await readFile(file as string, 'utf8');
    assert.doesNotMatch(toml, /server/);
    assert.match(toml, /\[host."http:\/\/127.0.0.1:30020"\]/);
  });

  it('backs up existing config once and restores it on cleanup', async () => {
    await mkdir(join(dir, 'docker.io'));
    await writeFile(join(dir, 'docker.io', 'hosts.toml'), EXISTING);
    await writeHostsConfig(init());
    await writeHostsConfig(init());
    assert.equal(await readFile(join(dir, '_backup', 'docker.io', 'hosts.toml'), 'utf8'), EXISTING);
    await cleanupHostsConfig(dir);
    assert.deepEqual(await readdir(dir), ['docker.io']);
    assert.equal(await readFile(join(dir, 'docker.io', 'hosts.toml'), 'utf8'), EXISTING);
  });

  it('appends the existing mirrors after shoal with --prepend-existing', async () => {
    await mkdir(join(dir, 'docker.io'));
    await writeFile(join(dir, 'docker.io', 'hosts.toml'), EXISTING);
    await writeHostsConfig(init({ prependExisting: true }));
    const toml = await readFile(join(dir, 'docker.io', 'hosts.toml'), 'utf8');
    assert.ok(toml.indexOf('127.0.0.1:30021') < toml.indexOf('mirror.example.internal'));
    assert.equal(toml.match(/^server =/gm)?.length, 1);
  });

  // Regression (issue 26, found by the property test): existing tables were kept verbatim even when they
  // made the file invalid TOML (malformed, or naming shoal's mirror again), and containerd could not read it.
  it('leaves out existing mirrors that would make the file invalid TOML, and says so', async () => {
    await mkdir(join(dir, 'docker.io'));
    await writeFile(
      join(dir, 'docker.io', 'hosts.toml'),
      '[host."http://127.0.0.1:30020"]\n  capabilities = ["pull"]\n',
    );
    const warnings: string[] = [];
    await writeHostsConfig(init({ prependExisting: true, warn: (message) => warnings.push(message) }));
    const toml = await readFile(join(dir, 'docker.io', 'hosts.toml'), 'utf8');
    assert.equal(toml, renderHostsToml(new URL('https://docker.io'), init(), ''));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /docker\.io\/hosts\.toml: the mirrors it had are left out/);
  });

  it('extracts host tables verbatim', () => {
    assert.equal(
      hostTables(EXISTING),
      '[host."https://mirror.example.internal"]\n  capabilities = ["pull"]\n',
    );
    assert.equal(hostTables('server = "x"\n'), '');
  });

  it('refuses to write without a mirror target', async () => {
    await assert.rejects(writeHostsConfig(init({ mirrorTargets: [] })), ConfigError);
  });

  it('cleanup without a backup leaves the directory alone', async () => {
    await mkdir(join(dir, 'foreign'));
    await cleanupHostsConfig(dir);
    assert.deepEqual(await readdir(dir), ['foreign']);
  });
});
