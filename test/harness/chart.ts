import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { HELM, type K8sObject, parseObjects, ROOT, render, renderComposed } from './k8s.js';

// The Helm chart (k8s/chart) takes its objects from the kustomize manifests: files/ holds their renders,
// made by `npm run chart`, and the templates change them from the values. Nothing is written twice.

export const CHART = join('k8s', 'chart');
/** Components whose objects the chart carries, each turned on by a value; the others are values alone. */
export const CHART_COMPONENTS = ['network-policy', 'service-monitor', 'webhook'];

const key = (object: K8sObject): string =>
  `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;

/** What files/ must hold: the install's objects, and the objects each of CHART_COMPONENTS adds to it. */
export async function chartFiles(): Promise<Map<string, string>> {
  const install = await render('k8s');
  const files = new Map([['install.yaml', text(install)]]);
  const base = new Set(install.map(key));
  for (const name of CHART_COMPONENTS) {
    const objects = await renderComposed(
      `chart-${name}`,
      ['base'],
      [`components/${name}`, 'components/image'],
    );
    files.set(`${name}.yaml`, text(objects.filter((object) => !base.has(key(object)))));
  }
  return files;
}

function text(objects: readonly K8sObject[]): string {
  return `# Made by \`npm run chart\` from the kustomize manifests in k8s/: do not edit.\n${stringify(objects)}`;
}

/** Writes files/ (`npm run chart`). */
export async function writeChartFiles(): Promise<string[]> {
  const dir = join(ROOT, CHART, 'files');
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of await chartFiles()) {
    const path = join(dir, name);
    if ((await readFile(path, 'utf8').catch(() => '')) === content) continue;
    await writeFile(path, content);
    written.push(join(CHART, 'files', name));
  }
  return written;
}

/** `helm template` of the chart with `values` (written to a file under dist/, as an operator's would be). */
export async function renderChart(name: string, values: Record<string, unknown>): Promise<K8sObject[]> {
  const dir = join(ROOT, 'dist', 'k8s-render');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.values.yaml`);
  await writeFile(file, stringify(values));
  const { stdout } = await promisify(execFile)(HELM, ['template', 'shoal', join(ROOT, CHART), '-f', file], {
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  return parseObjects(stdout, `helm template (${name})`);
}

/** Values that turn on everything the example kustomization turns on. */
export const ALL_ON = {
  serviceMonitor: { enabled: true },
  service: { registry: { trafficDistribution: 'PreferSameNode' } },
  shoal: { p2pPskSecretName: 'shoal-psk', networkPolicy: { enabled: true }, webhook: { enabled: true } },
};

/** Values for k3s's or RKE2's paths, as components/k3s and components/rke2 set them. */
export function distroValues(distro: 'k3s' | 'rke2'): Record<string, unknown> {
  const root = `/var/lib/rancher/${distro}/agent`;
  return {
    spegel: {
      containerdSock: '/run/k3s/containerd/containerd.sock',
      containerdContentPath: `${root}/containerd/io.containerd.content.v1.content`,
      containerdRegistryConfigPath: `${root}/etc/containerd/certs.d`,
    },
    shoal: { containerdConfigPath: `${root}/etc/containerd` },
  };
}

/**
 * A values.yaml as a Spegel user keeps it: Spegel's own names, none of them at the chart's defaults. The
 * chart must take every one that has an equivalent (k8s/README.md lists them).
 */
export const SPEGEL_VALUES = {
  image: {
    repository: 'ghcr.example/mirror/shoal',
    tag: '9.9.9',
    digest: `sha256:${'ab'.repeat(32)}`,
    pullPolicy: 'Always',
  },
  imagePullSecrets: [{ name: 'pull-secret' }],
  commonLabels: { team: 'platform' },
  daemonsetAnnotations: { 'example.com/owner': 'platform' },
  podAnnotations: { 'example.com/scrape': 'yes' },
  revisionHistoryLimit: 3,
  updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '20%' } },
  resources: { requests: { cpu: '200m', memory: '300Mi' }, limits: { memory: '1Gi' } },
  nodeSelector: { 'node-role.example.com/worker': 'true' },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'builds', effect: 'NoSchedule' }],
  affinity: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'example.com/pool', operator: 'In', values: ['a'] }] },
        ],
      },
    },
  },
  priorityClassName: 'system-cluster-critical',
  serviceAccount: { annotations: { 'example.com/role': 'mirror' } },
  // Not a timing change under test: values away from the defaults, so the test can see each one arrive.
  serviceMonitor: { enabled: true, interval: '15s', scrapeTimeout: '10s', labels: { release: 'prom' } },
  livenessProbe: { enabled: false },
  spegel: {
    logLevel: 'debug',
    mirroredRegistries: ['https://docker.io', 'https://ghcr.io'],
    additionalMirrorTargets: ['https://mirror.example.com'],
    mirrorResolveRetries: 5,
    // Away from its default (20ms) only to be seen in the rendered env; no test runs a node with it.
    mirrorResolveTimeout: '50ms',
    containerdNamespace: 'k8s.example',
    resolveTags: false,
    registryFilters: ['^docker.io/library/internal-'],
    prependExisting: true,
    debugWebEnabled: false,
  },
};
