import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { envName, type FlagSet, parseFlags } from '../../src/main/config/flag.js';
import {
  COMPONENTS,
  DISTROS,
  installsUnderTest,
  type K8sObject,
  ROOT,
  schemaProblems,
} from '../harness/k8s.js';
import {
  type Container,
  containersOf,
  DOWNWARD,
  environment,
  flagsOf,
  of,
  type Port,
  shoalCommand,
  type Workload,
  workloads,
} from '../harness/k8s-objects.js';

// k8s/ rendered by a current kubectl the way operators install it (the default install, each component
// with the base, every component together, the cleanup) and checked the way the cluster and shoal would
// read it: every object against the Kubernetes schemas, every env var and argument against the CLI's own
// flag table, ports and probes against the CLI defaults, selectors against the pods they must find.

/** Components that need an API server newer than the base's minimum (k8s/README.md), and which one. */
const NEWER_API: Record<string, string> = { 'prefer-same-node': '1.34' };
const CRITICAL = ['system-node-critical', 'system-cluster-critical'];

const envNames = (flags: FlagSet): Set<string> => new Set(Object.keys(flags).map(envName));
const registryContainer = (workload: Workload): Container | undefined =>
  workload.spec.template.spec.containers.find((c) => shoalCommand(c) === 'registry');

describe('k8s/: every way to install renders and holds together', { timeout: 180_000 }, () => {
  const installs = installsUnderTest();
  const { get } = installs;

  const each = (check: (objects: K8sObject[], name: string) => void | Promise<void>) => async () => {
    assert.ok(installs.all().size > 0);
    for (const [name, objects] of installs.all()) {
      try {
        await check(objects, name);
      } catch (err) {
        (err as Error).message = `${name}: ${(err as Error).message}`;
        throw err;
      }
    }
  };

  it('renders the install, each component with the base, all of them together, and the cleanup', async () => {
    const kinds = (name: string) =>
      get(name)
        .map((o) => o.kind)
        .sort();
    assert.deepEqual(kinds('k8s'), [
      'ConfigMap',
      'DaemonSet',
      'Namespace',
      'ResourceQuota',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
    for (const kind of ['NetworkPolicy', 'ServiceMonitor', 'MutatingWebhookConfiguration', 'Deployment'])
      assert.ok(kinds('k8s/examples/all').includes(kind), kind);
    // The example turns on every component but the distributions' (alternatives), the image one last.
    const example = parseYaml(await readFile(join(ROOT, 'k8s/examples/all/kustomization.yaml'), 'utf8')) as {
      components: string[];
    };
    const listed = example.components.map((path) => path.replace('../../components/', ''));
    assert.deepEqual(
      [...listed].sort(),
      [...COMPONENTS.filter((name) => !DISTROS.includes(name)), 'image'].sort(),
    );
    assert.equal(listed.at(-1), 'image');
  });

  it('validates every rendered object against the Kubernetes schemas', async () => {
    for (const [name, objects] of installs.all()) assert.deepEqual(await schemaProblems(objects), [], name);
  });

  it('the schema check fails on a misspelt field (so the check above can fail)', async () => {
    const daemonSet = structuredClone(workloads(get('k8s'))[0]) as Workload;
    const pod = daemonSet.spec.template.spec as unknown as Record<string, unknown>;
    pod.terminationGracePeriodSecond = pod.terminationGracePeriodSeconds;
    delete pod.terminationGracePeriodSeconds;
    const problems = await schemaProblems([daemonSet]);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /terminationGracePeriodSecond/);
    const wrongType = structuredClone(daemonSet);
    (wrongType.spec.template.spec.containers[0] as unknown as Record<string, unknown>).ports = [
      { containerPort: 'x' },
    ];
    assert.ok((await schemaProblems([wrongType])).length > 0);
  });

  it(
    'every container runs a real shoal command, with env vars that are its flags and values it parses',
    each((objects) => {
      for (const workload of workloads(objects)) {
        for (const container of containersOf(workload.spec.template.spec)) {
          const command = shoalCommand(container);
          if (command === undefined) continue;
          const flags = flagsOf(command);
          const known = envNames(flags);
          for (const entry of container.env ?? []) {
            // A var that is no flag must be a downward-API value another var is built from.
            if (known.has(entry.name)) continue;
            assert.ok(
              entry.valueFrom?.fieldRef,
              `${container.name} (${command}): ${entry.name} is no flag of shoal ${command}`,
            );
            assert.ok(
              (container.env ?? []).some((other) => other.value?.includes(`$(${entry.name})`)),
              `${container.name}: ${entry.name} is never used`,
            );
          }
          // Parsing is what shoal does at start: an unknown flag or a bad value fails here as in the pod,
          // on an IPv4 node and on an IPv6 one.
          for (const hostIP of ['10.1.2.3', 'fd00::1']) {
            const env = environment(container, objects, { ...DOWNWARD, 'status.hostIP': hostIP });
            parseFlags(flags, container.args?.slice(1) ?? [], env);
          }
        }
      }
    }),
  );

  it(
    'every ConfigMap key is a flag of a command that reads it',
    each((objects) => {
      for (const map of of<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap')) {
        // A Grafana dashboard is read by Grafana's sidecar, not by shoal (checked against /metrics instead).
        if (map.metadata.labels?.grafana_dashboard !== undefined) continue;
        const readers = workloads(objects)
          .flatMap((workload) => containersOf(workload.spec.template.spec))
          .filter((container) =>
            container.envFrom?.some((from) => from.configMapRef?.name === map.metadata.name),
          );
        assert.ok(readers.length > 0, `${map.metadata.name} is read by no container`);
        for (const key of Object.keys(map.data)) {
          assert.ok(
            readers.some((container) => envNames(flagsOf(shoalCommand(container) ?? '')).has(key)),
            `${map.metadata.name}: ${key} is a flag of none of ${readers.map((c) => c.name).join(', ')}`,
          );
        }
      }
    }),
  );

  it(
    'ports and probes are the CLI defaults, and containerd is pointed at the hostPort',
    each((objects) => {
      for (const workload of workloads(objects)) {
        const pod = workload.spec.template.spec;
        for (const container of containersOf(pod)) {
          const command = shoalCommand(container);
          const env = environment(container, objects);
          const port = (name: string): Port => {
            const found = container.ports?.find((p) => p.name === name);
            assert.ok(found, `${container.name}: no port named ${name}`);
            return found;
          };
          if (command === 'registry') {
            const flags = flagsOf('registry');
            const config = parseFlags(flags, [], env).values as Record<string, { port: number }>;
            for (const [name, key] of [
              ['registry', 'registryAddr'],
              ['router', 'routerAddr'],
              ['metrics', 'metricsAddr'],
            ] as const) {
              const fromDefault = (flags[key]?.defaultValue as { port: number } | undefined)?.port;
              assert.equal(config[key]?.port, fromDefault, `${key} moved from its default`);
              assert.equal(port(name).containerPort, fromDefault, `port ${name}`);
            }
            // containerd on the node dials the node's IP: the registry port is a host port, the only one.
            assert.equal(port('registry').hostPort, port('registry').containerPort);
            assert.deepEqual(
              container.ports?.filter((p) => p.hostPort !== undefined).map((p) => p.name),
              ['registry'],
            );
            assert.equal(container.startupProbe?.httpGet?.path, '/livez');
            assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
            // The chart's livenessProbe.enabled (Spegel's) may leave the liveness probe out.
            if (container.livenessProbe !== undefined)
              assert.equal(container.livenessProbe.httpGet?.path, '/livez');
            for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe])
              if (probe !== undefined) assert.equal(probe.httpGet?.port, 'registry');
            // The kubelet must outwait the drain, or SIGKILL cuts what --shutdown-grace promised to finish.
            const grace = (parseFlags(flags, [], env).values as { shutdownGrace: number }).shutdownGrace;
            assert.ok((pod.terminationGracePeriodSeconds ?? 30) * 1000 >= grace + 5000);
            assert.equal(env.STORE, 'containerd');
          }
          if (command === 'configuration') {
            const registry = registryContainer(workload);
            const hostPort = registry?.ports?.find((p) => p.name === 'registry')?.hostPort;
            const targets = parseFlags(flagsOf('configuration'), [], env).values.mirrorTargets as URL[];
            // This node's shoal first; the chart's additionalMirrorTargets (Spegel's) may follow.
            assert.equal(targets[0]?.origin, `http://10.1.2.3:${hostPort}`);
            assert.equal(
              env.MIRRORED_REGISTRIES,
              registry === undefined ? undefined : environment(registry, objects).MIRRORED_REGISTRIES,
            );
          }
          if (command === 'webhook') {
            const config = parseFlags(flagsOf('webhook'), [], env).values as {
              webhookAddr: { port: number };
              shoalUrl: URL;
            };
            assert.equal(port('webhook').containerPort, config.webhookAddr.port);
            assert.equal(container.readinessProbe?.httpGet?.scheme, 'HTTPS');
            assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
            assert.equal(container.livenessProbe?.httpGet?.path, '/livez');
            assert.equal(container.readinessProbe?.httpGet?.port, 'webhook');
            // It asks shoal through the registry Service, whose port leads to the registry port.
            const service = of<K8sObject & { spec: { ports: Array<{ port: number; targetPort: string }> } }>(
              objects,
              'Service',
            ).find((s) => config.shoalUrl.hostname === `${s.metadata.name}.${s.metadata.namespace}.svc`);
            assert.ok(service, `SHOAL_URL ${config.shoalUrl} names no rendered Service`);
            assert.equal(Number(config.shoalUrl.port), service.spec.ports[0]?.port);
            assert.equal(service.spec.ports[0]?.targetPort, 'registry');
          }
          for (const mount of container.volumeMounts ?? [])
            assert.ok(
              pod.volumes?.some((v) => v.name === mount.name),
              `${container.name}: volume ${mount.name}`,
            );
        }
      }
    }),
  );

  it(
    'every container runs the image components/image names, tagged with the package version',
    each(async (objects, name) => {
      // A Spegel user's values name an image of their own (checked in helm-chart.test.ts).
      if (name === 'helm: a Spegel values.yaml') return;
      const { images } = parseYaml(
        await readFile(join(ROOT, 'k8s/components/image/kustomization.yaml'), 'utf8'),
      ) as { images: Array<{ name: string; newName: string; newTag: string }> };
      const [named] = images;
      assert.ok(named);
      const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string })
        .version;
      assert.equal(named.newTag, version);
      for (const workload of workloads(objects))
        for (const container of containersOf(workload.spec.template.spec))
          assert.equal(container.image, `${named.newName}:${named.newTag}`, container.name);
    }),
  );

  it('names the image in one file only', async () => {
    const named: string[] = [];
    for (const entry of await readdir(join(ROOT, 'k8s'), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue;
      const path = join(entry.parentPath, entry.name).slice(ROOT.length);
      // The chart's files/ are kustomize's renders (npm run chart), not a second naming.
      if (path.startsWith(join('k8s', 'chart', 'files'))) continue;
      const text = await readFile(join(ROOT, path), 'utf8');
      if (/^images:/m.test(text) || /registry\.example/.test(text)) named.push(path);
    }
    assert.deepEqual(named, ['k8s/components/image/kustomization.yaml']);
  });

  it(
    'runs every pod on Linux nodes only',
    each((objects) => {
      for (const workload of workloads(objects))
        assert.equal(
          workload.spec.template.spec.nodeSelector?.['kubernetes.io/os'],
          'linux',
          `${workload.kind}/${workload.metadata.name}`,
        );
    }),
  );

  it(
    'a critical priority class comes with a ResourceQuota that admits it in its namespace (GKE)',
    each((objects) => {
      type Quota = K8sObject & {
        spec: {
          hard: Record<string, string>;
          scopeSelector?: {
            matchExpressions: Array<{ scopeName: string; operator: string; values: string[] }>;
          };
        };
      };
      for (const workload of workloads(objects)) {
        const priority = workload.spec.template.spec.priorityClassName;
        if (priority === undefined || !CRITICAL.includes(priority)) continue;
        const quota = of<Quota>(objects, 'ResourceQuota').find(
          (each) =>
            each.metadata.namespace === workload.metadata.namespace &&
            each.spec.scopeSelector?.matchExpressions.some(
              (e) => e.scopeName === 'PriorityClass' && e.operator === 'In' && e.values.includes(priority),
            ),
        );
        assert.ok(quota, `${workload.metadata.name}: ${priority} without a ResourceQuota naming it`);
        assert.ok(Number.parseFloat(quota.spec.hard.pods ?? '0') > 0);
      }
    }),
  );

  it(
    'uses no field an API server older than the stated minimum refuses',
    each((objects, name) => {
      // The example and the chart with everything on include prefer-same-node.
      const all = name === 'k8s/examples/all' || name === 'helm: all on';
      const newer = Object.keys(NEWER_API).filter((component) => name.includes(component) || all);
      for (const service of of<K8sObject & { spec: { trafficDistribution?: string } }>(objects, 'Service')) {
        // PreferSameNode: refused before 1.34 (1.33 without its feature gate).
        if (service.spec.trafficDistribution === undefined) continue;
        assert.ok(
          newer.includes('prefer-same-node'),
          `Service ${service.metadata.name}: trafficDistribution`,
        );
      }
    }),
  );

  it(
    'mounts containerd’s socket directory, never the socket file (containerd makes a new one when it restarts)',
    each((objects) => {
      for (const workload of workloads(objects)) {
        const pod = workload.spec.template.spec;
        for (const volume of pod.volumes ?? []) assert.notEqual(volume.hostPath?.type, 'Socket', volume.name);
        const registry = registryContainer(workload);
        if (registry === undefined) continue;
        const socket = environment(registry, objects).CONTAINERD_SOCK ?? '';
        const mount = registry.volumeMounts?.find((m) => socket.startsWith(`${m.mountPath}/`));
        assert.ok(mount, `no mount holds ${socket}`);
        assert.equal(
          socket.slice(mount.mountPath.length + 1).includes('/'),
          false,
          'the socket’s own directory',
        );
        assert.equal(pod.volumes?.find((v) => v.name === mount.name)?.hostPath?.type, 'Directory');
      }
    }),
  );

  it(
    'Service selectors find the pods, and their target ports name the pods’ ports',
    each((objects) => {
      for (const service of of<
        K8sObject & {
          spec: { selector: Record<string, string>; ports: Array<{ targetPort: string; port: number }> };
        }
      >(objects, 'Service')) {
        const pods = workloads(objects).filter((w) =>
          Object.entries(service.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v),
        );
        assert.ok(pods.length > 0, `Service ${service.metadata.name} selects no pod`);
        for (const workload of pods) {
          assert.deepEqual(workload.spec.selector.matchLabels, workload.spec.template.metadata.labels);
          const ports = workload.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
          for (const port of service.spec.ports) {
            const target = ports.find((p) => p.name === port.targetPort);
            assert.ok(target, `Service ${service.metadata.name}: targetPort ${port.targetPort}`);
          }
        }
      }
    }),
  );

  it(
    'the bootstrap name is the headless Service, which lists pods before they are ready',
    each((objects) => {
      const bootstrap = of<
        K8sObject & {
          spec: { clusterIP?: string; publishNotReadyAddresses?: boolean; ports: Array<{ port: number }> };
        }
      >(objects, 'Service').find((s) => s.metadata.name === 'shoal-bootstrap');
      for (const workload of workloads(objects)) {
        const container = registryContainer(workload);
        if (container === undefined) continue;
        const env = environment(container, objects);
        assert.ok(bootstrap, 'no shoal-bootstrap Service');
        assert.equal(bootstrap.spec.clusterIP, 'None');
        assert.equal(bootstrap.spec.publishNotReadyAddresses, true);
        assert.equal(env.BOOTSTRAP_KIND, 'dns');
        assert.equal(
          env.DNS_BOOTSTRAP_DOMAIN,
          `${bootstrap.metadata.name}.${bootstrap.metadata.namespace}.svc`,
        );
        assert.equal(
          bootstrap.spec.ports[0]?.port,
          container.ports?.find((p) => p.name === 'router')?.containerPort,
        );
      }
    }),
  );
});
