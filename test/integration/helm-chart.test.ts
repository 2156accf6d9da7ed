import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { parseFlags } from '../../src/main/config/flag.js';
import { ALL_ON, CHART, chartFiles, distroValues, renderChart, SPEGEL_VALUES } from '../harness/chart.js';
import { HELM, type K8sObject, ROOT, render, renderComposed } from '../harness/k8s.js';
import {
  type Container,
  containerRunning,
  containersOf,
  environment,
  flagsOf,
  of,
  type Workload,
  workloads,
} from '../harness/k8s-objects.js';

// The Helm chart renders what the kustomize manifests render: the same objects at its defaults, with
// everything on, and on k3s and RKE2's paths. Its objects come from the kustomize manifests themselves
// (files/, made by `npm run chart`), so nothing is written twice; the manifest tests run their checks on
// the chart's renders too (k8s-manifests.test.ts).

const byKey = (objects: readonly K8sObject[]): Map<string, K8sObject> =>
  new Map(objects.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]));

function assertSameObjects(chart: readonly K8sObject[], kustomize: readonly K8sObject[], what: string): void {
  const [a, b] = [byKey(chart), byKey(kustomize)];
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: the same objects`);
  for (const [key, object] of a) assert.deepEqual(object, b.get(key), `${what}: ${key}`);
}

const registry = (objects: readonly K8sObject[]): Container => {
  const container = containerRunning(objects, 'registry');
  assert.ok(container);
  return container;
};

describe('k8s/chart: the Helm chart', { timeout: 180_000 }, () => {
  it('passes helm lint', async () => {
    const { stdout } = await promisify(execFile)(HELM, ['lint', '--strict', join(ROOT, CHART)]);
    assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('carries the kustomize manifests as they render now (npm run chart)', async () => {
    for (const [name, content] of await chartFiles()) {
      const path = join(ROOT, CHART, 'files', name);
      assert.equal(
        await readFile(path, 'utf8').catch(() => ''),
        content,
        `${path} is stale: run npm run chart`,
      );
    }
  });

  it('renders what kustomize renders: at its defaults, with everything on, and on k3s and RKE2', async () => {
    assertSameObjects(await renderChart('defaults', {}), await render('k8s'), 'defaults');
    assertSameObjects(await renderChart('all-on', ALL_ON), await render('k8s/examples/all'), 'everything on');
    for (const distro of ['k3s', 'rke2'] as const) {
      const kustomize = await renderComposed(
        `base-${distro}`,
        ['base'],
        [`components/${distro}`, 'components/image'],
      );
      assertSameObjects(await renderChart(distro, distroValues(distro)), kustomize, distro);
    }
  });

  it('its defaults are the CLI’s where a value is a flag', async () => {
    const values = parseYaml(await readFile(join(ROOT, CHART, 'values.yaml'), 'utf8')) as {
      spegel: { mirrorResolveRetries: number; mirrorResolveTimeout: string; debugWebEnabled: boolean };
      image: { repository: string };
    };
    const defaults = parseFlags(flagsOf('registry'), [], {}).values as {
      mirrorResolveRetries: number;
      mirrorResolveTimeout: number;
      debugWeb: boolean;
    };
    assert.equal(values.spegel.mirrorResolveRetries, defaults.mirrorResolveRetries);
    // The chart's default timeout, parsed as the CLI parses it, must be the CLI's own default.
    const timeout = parseFlags(
      flagsOf('registry'),
      ['--mirror-resolve-timeout', values.spegel.mirrorResolveTimeout],
      {},
    ).values as { mirrorResolveTimeout: number };
    assert.equal(timeout.mirrorResolveTimeout, defaults.mirrorResolveTimeout);
    assert.equal(values.spegel.debugWebEnabled, defaults.debugWeb);
    // The image is named by components/image alone: the chart takes it from what kustomize rendered.
    assert.equal(values.image.repository, '');
  });

  it('takes a Spegel values.yaml: each of its settings reaches the objects', async () => {
    const objects = await renderChart('spegel', SPEGEL_VALUES);
    const [daemonSet] = of<Workload & { metadata: { annotations?: Record<string, string> } }>(
      objects,
      'DaemonSet',
    );
    assert.ok(daemonSet);
    const pod = daemonSet.spec.template.spec as Workload['spec']['template']['spec'] &
      Record<string, unknown>;
    const { image, spegel } = SPEGEL_VALUES;
    for (const container of containersOf(pod))
      assert.equal(container.image, `${image.repository}:${image.tag}@${image.digest}`);
    assert.deepEqual(pod.imagePullSecrets, SPEGEL_VALUES.imagePullSecrets);
    assert.deepEqual(pod.nodeSelector, { ...SPEGEL_VALUES.nodeSelector, 'kubernetes.io/os': 'linux' });
    assert.deepEqual(pod.tolerations, SPEGEL_VALUES.tolerations);
    assert.deepEqual(pod.affinity, SPEGEL_VALUES.affinity);
    assert.equal(pod.priorityClassName, SPEGEL_VALUES.priorityClassName);
    assert.deepEqual(daemonSet.metadata.annotations, SPEGEL_VALUES.daemonsetAnnotations);
    assert.equal(daemonSet.metadata.labels?.team, 'platform');
    const main = registry(objects);
    assert.deepEqual((main as unknown as { resources: unknown }).resources, SPEGEL_VALUES.resources);
    assert.equal(main.livenessProbe, undefined);
    const env = environment(main, objects);
    assert.equal(env.LOG_LEVEL, 'debug');
    assert.equal(env.MIRRORED_REGISTRIES, spegel.mirroredRegistries.join(','));
    assert.equal(env.RESOLVE_TAGS, 'false');
    assert.equal(env.REGISTRY_FILTERS, spegel.registryFilters.join(','));
    assert.equal(env.MIRROR_RESOLVE_RETRIES, '5');
    assert.equal(env.MIRROR_RESOLVE_TIMEOUT, '50ms');
    assert.equal(env.CONTAINERD_NAMESPACE, 'k8s.example');
    assert.equal(env.DEBUG_WEB, 'false');
    const init = containerRunning(objects, 'configuration') as Container;
    const initEnv = environment(init, objects);
    assert.equal(initEnv.PREPEND_EXISTING, 'true');
    assert.equal(initEnv.MIRROR_TARGETS?.split(',')[1], 'https://mirror.example.com');
    // A changed setting renames the ConfigMap (as kustomize's hash would), so the pods roll.
    const [config] = of(objects, 'ConfigMap').filter((o) => o.metadata.name.startsWith('shoal-config-'));
    const [defaultConfig] = of(await renderChart('defaults', {}), 'ConfigMap');
    assert.notEqual(config?.metadata.name, defaultConfig?.metadata.name);
    const [monitor] = of<K8sObject & { spec: { endpoints: Array<Record<string, string>> } }>(
      objects,
      'ServiceMonitor',
    );
    assert.equal(monitor?.metadata.labels?.release, 'prom');
    assert.equal(monitor?.spec.endpoints[0]?.interval, '15s');
    assert.equal(monitor?.spec.endpoints[0]?.scrapeTimeout, '10s');
    // A critical class other than the default gets its own quota (GKE).
    const [quota] = of<
      K8sObject & { spec: { scopeSelector: { matchExpressions: Array<{ values: string[] }> } } }
    >(objects, 'ResourceQuota');
    assert.deepEqual(quota?.spec.scopeSelector.matchExpressions[0]?.values, ['system-cluster-critical']);
    assert.ok(workloads(objects).length > 0);
  });
});
