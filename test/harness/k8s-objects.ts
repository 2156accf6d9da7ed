import assert from 'node:assert/strict';
import { COMMANDS } from '../../src/main/cli.js';
import type { FlagSet } from '../../src/main/config/flag.js';
import type { K8sObject } from './k8s.js';

// Rendered workloads read the way the kubelet and shoal read them: the containers, their env as the kubelet
// hands it over, and the shoal command each runs.

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
export interface Port {
  name: string;
  containerPort: number;
  hostPort?: number;
}
export interface Probe {
  httpGet?: { path: string; port: string; scheme?: string };
}
export interface Container {
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
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  secret?: { secretName: string; optional?: boolean };
}
export interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
  nodeSelector?: Record<string, string>;
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
}
export interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

export const of = <T extends K8sObject>(objects: readonly K8sObject[], kind: string): T[] =>
  objects.filter((object) => object.kind === kind) as T[];
/** DaemonSets and Deployments: everything that runs pods. */
export const workloads = (objects: readonly K8sObject[]): Workload[] =>
  objects.filter((object) => object.kind === 'DaemonSet' || object.kind === 'Deployment') as Workload[];
export const containersOf = (pod: PodSpec): Container[] => [...(pod.initContainers ?? []), ...pod.containers];

/** What the downward API gives a pod here: an IPv4 node unless a test asks for another. */
export const DOWNWARD: Readonly<Record<string, string>> = {
  'status.hostIP': '10.1.2.3',
  'metadata.namespace': 'shoal',
};

/** The container's env as the kubelet hands it over: ConfigMap keys, then its own vars with $(VAR) expanded. */
export function environment(
  container: Container,
  objects: readonly K8sObject[],
  downward: Readonly<Record<string, string>> = DOWNWARD,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const name = from.configMapRef?.name;
    const map = of<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap').find(
      (each) => each.metadata.name === name,
    );
    assert.ok(map, `${container.name}: envFrom names ConfigMap ${name}, which is not rendered`);
    Object.assign(env, map.data);
  }
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
export function shoalCommand(container: Container): string | undefined {
  if (container.command !== undefined) return undefined;
  const word = container.args?.[0];
  assert.ok(
    word !== undefined && word in COMMANDS,
    `${container.name}: args ${JSON.stringify(container.args)}`,
  );
  return word;
}

export const flagsOf = (command: string): FlagSet => (COMMANDS[command] as { flags: FlagSet }).flags;

/** The first container in `objects` that runs `shoal <command>`. */
export function containerRunning(objects: readonly K8sObject[], command: string): Container | undefined {
  return workloads(objects)
    .flatMap((workload) => containersOf(workload.spec.template.spec))
    .find((container) => shoalCommand(container) === command);
}
