import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CheckResult } from '../../src/main/preflight/checks.js';
import { Containerd, type CriOptions } from '../harness/containerd.js';
import { waitFor } from '../harness/process.js';
import { configureMirror, containerdStoreArgs, preflightArgs, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const REGISTRY = 'https://registry.test';

// Real containerds with their CRI plugin on, each set up as a node's might be, and a shoal on each, started
// through the real CLI. What the node's preflight finds (its log, /metrics, the debug page's JSON, and
// /readyz under --strict-preflight) and what `shoal doctor` prints must name each problem and its fix, and
// say nothing of a node set up right.
describe('preflight against a real containerd', { timeout: 180_000 }, () => {
  let dir: string;
  const containerds: Containerd[] = [];
  const shoals: ShoalProcess[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-preflight');
  });

  after(async () => {
    await Promise.all(shoals.map((shoal) => shoal.stop()));
    await Promise.all(containerds.map((containerd) => containerd.stop()));
    await removeDir(dir);
  });

  /** A containerd set up with `cri`, its k8s.io namespace made, and a shoal in front of it. */
  async function node(
    name: string,
    cri: (hostsDir: string) => CriOptions,
    hosts: (shoal: ShoalProcess, containerd: Containerd) => Promise<void>,
  ): Promise<{ containerd: Containerd; shoal: ShoalProcess }> {
    const base = join(dir, name);
    const containerd = new Containerd(base, 'k8s.io', { cri: cri(join(base, 'certs.d')) });
    assert.equal(containerd.hostsDir, join(base, 'certs.d'));
    await containerd.start();
    containerds.push(containerd);
    await containerd.ctr(['namespaces', 'create', 'k8s.io']);
    const shoal = new ShoalProcess([
      ...containerdStoreArgs(containerd),
      '--data-dir',
      join(base, 'shoal'),
      ...preflightArgs(containerd, REGISTRY),
      '--strict-preflight',
      // The default level: the harness quiets nodes to warn, and the preflight's own lines are read below.
      '--log-level',
      'info',
    ]);
    await shoal.reservePorts();
    await hosts(shoal, containerd);
    shoals.push(shoal);
    await shoal.start();
    await waitFor('a preflight report', async () => (await shoal.debugState()).preflight !== undefined);
    return { containerd, shoal };
  }

  const failed = (results: readonly CheckResult[]) =>
    Object.fromEntries(results.filter((result) => !result.ok).map((result) => [result.check, result]));

  it('finds nothing wrong with a containerd set up right, and the node is ready', async () => {
    const { containerd, shoal } = await node(
      'good',
      (hostsDir) => ({ configPath: hostsDir }),
      (s, c) => configureMirror(c.hostsDir, REGISTRY, s.url),
    );
    const report = (await shoal.debugState()).preflight;
    assert.equal(report?.ok, true, JSON.stringify(report?.results, null, 2));
    assert.deepEqual(
      report?.results.map((result) => result.check),
      [
        'store',
        'containerd_socket',
        'containerd_namespace',
        'content_directory',
        'registry_config_path',
        'hosts_toml',
        'discard_unpacked_layers',
      ],
    );
    for (const check of report?.results ?? [])
      assert.equal(await shoal.metric(`shoal_preflight_ok{check="${check.check}"}`), 1, check.check);
    await shoal.waitReady(10_000);
    assert.match(shoal.output, /"msg":"preflight passed"/);
    assert.doesNotMatch(shoal.output, /"level":40,[^\n]*"component":"preflight"/);
    const doctor = await shoal.doctor([
      ...containerdStoreArgs(containerd),
      ...preflightArgs(containerd, REGISTRY),
    ]);
    assert.equal(doctor.code, 0, doctor.output);
    assert.match(doctor.output, /all \d+ checks passed/);
  });

  it('reports an unset config_path, discarded layers and a missing hosts.toml, each with its fix', async () => {
    const { containerd, shoal } = await node(
      'bare',
      () => ({ discardUnpackedLayers: true }),
      async () => undefined,
    );
    const report = (await shoal.debugState()).preflight;
    assert.equal(report?.ok, false);
    const problems = failed(report?.results ?? []);
    assert.deepEqual(Object.keys(problems).sort(), [
      'discard_unpacked_layers',
      'hosts_toml',
      'registry_config_path',
    ]);
    assert.match(
      problems.registry_config_path?.summary ?? '',
      /config_path is not set \(the CRI plugin’s status\)/,
    );
    assert.match(
      problems.registry_config_path?.fix ?? '',
      new RegExp(`config_path = "${containerd.hostsDir}"`),
    );
    assert.match(problems.hosts_toml?.summary ?? '', /registry\.test: no hosts\.toml/);
    assert.match(problems.discard_unpacked_layers?.fix ?? '', /discard_unpacked_layers = false/);
    for (const check of Object.keys(problems)) {
      assert.equal(await shoal.metric(`shoal_preflight_ok{check="${check}"}`), 0, check);
      // Each failure is a warning in the log, with its fix.
      assert.match(shoal.output, new RegExp(`"check":"${check}","fix":"[^"]+"`));
    }
    // --strict-preflight: a failed check keeps the node out of service.
    assert.equal((await fetch(`${shoal.url}/readyz`)).status, 503);
    const doctor = await shoal.doctor([
      ...containerdStoreArgs(containerd),
      ...preflightArgs(containerd, REGISTRY),
    ]);
    assert.equal(doctor.code, 1);
    assert.match(doctor.output, /✗ registry_config_path: .*\n {4}fix: set config_path/);
    // And the node answers, but --strict-preflight keeps it unready: doctor says that is why.
    assert.match(doctor.output, /✗ shoal_answers: .*not ready: a preflight check fails/);
    assert.match(doctor.output, /4 of \d+ checks failed/);
    const json = await shoal.doctor([
      ...containerdStoreArgs(containerd),
      ...preflightArgs(containerd, REGISTRY),
      '--json',
    ]);
    const parsed = JSON.parse(json.output) as { ok: boolean; checks: CheckResult[] };
    assert.equal(parsed.ok, false);
    assert.deepEqual(Object.keys(failed(parsed.checks)).sort(), [
      'discard_unpacked_layers',
      'hosts_toml',
      'registry_config_path',
      'shoal_answers',
    ]);
  });

  it('reports a hosts.toml that sends pulls to another mirror', async () => {
    const { shoal } = await node(
      'elsewhere',
      (hostsDir) => ({ configPath: hostsDir }),
      (_s, c) => configureMirror(c.hostsDir, REGISTRY, 'http://127.0.0.1:1'),
    );
    const problems = failed((await shoal.debugState()).preflight?.results ?? []);
    assert.deepEqual(Object.keys(problems), ['hosts_toml']);
    assert.match(
      problems.hosts_toml?.summary ?? '',
      new RegExp(
        `not pointed at this node \\(http://127\\.0\\.0\\.1:${shoal.port}\\) for: .*lists http://127\\.0\\.0\\.1:1, not this node`,
      ),
    );
    assert.match(problems.hosts_toml?.fix ?? '', /shoal configuration/);
  });
});
