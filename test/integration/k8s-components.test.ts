import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WEBHOOK_PATH } from '../../src/main/webhook/webhook.js';
import { DISTROS, installsUnderTest, type K8sObject } from '../harness/k8s.js';
import {
  type Container,
  containersOf,
  environment,
  flagsOf,
  of,
  shoalCommand,
  type Workload,
  workloads,
} from '../harness/k8s-objects.js';

// What each optional component adds, rendered with the base as an operator would install it.

describe('k8s/components: each does what it says', { timeout: 180_000 }, () => {
  const { get } = installsUnderTest();

  it('the webhook configuration fails open, skips shoal’s own namespace and reaches the webhook Service', () => {
    const objects = get('base + webhook');
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

  it('the webhook is a Deployment of its own: 2 replicas, a disruption budget, and no mirror beside it', () => {
    const objects = get('base + webhook');
    const [deployment] = of<Workload>(objects, 'Deployment');
    assert.ok(deployment);
    assert.ok((deployment.spec.replicas ?? 1) >= 2);
    const commands = containersOf(deployment.spec.template.spec).map(shoalCommand);
    assert.deepEqual(commands, ['webhook']);
    // The mirror's DaemonSet runs no webhook: a webhook without its Secret never holds a mirror pod back.
    for (const daemonSet of of<Workload>(objects, 'DaemonSet'))
      assert.ok(!containersOf(daemonSet.spec.template.spec).some((c) => shoalCommand(c) === 'webhook'));
    type Budget = K8sObject & {
      spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    };
    const [budget] = of<Budget>(objects, 'PodDisruptionBudget');
    assert.ok(budget);
    assert.deepEqual(budget.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
    assert.ok(budget.spec.minAvailable >= 1 && budget.spec.minAvailable < (deployment.spec.replicas ?? 1));
  });

  it('the pre-shared key file is the mounted Secret', () => {
    const objects = get('base + psk');
    const [workload] = workloads(objects);
    const container = workload?.spec.template.spec.containers.find((c) => c.name === 'registry') as Container;
    const file = environment(container, objects).P2P_PSK_FILE ?? '';
    const mount = container.volumeMounts?.find((m) => m.name === 'psk');
    assert.ok(mount && file.startsWith(`${mount.mountPath}/`), `${file} under the psk mount`);
  });

  it('the NetworkPolicy closes the router port to all but shoal pods, and the ServiceMonitor names a real port', () => {
    const policyObjects = get('base + network-policy');
    const podPorts = new Set(
      workloads(policyObjects)
        .flatMap((w) => w.spec.template.spec.containers.flatMap((c) => c.ports ?? []))
        .map((p) => p.name),
    );
    type Rule = {
      from?: Array<{ podSelector?: { matchLabels: Record<string, string> } }>;
      ports: Array<{ port: string }>;
    };
    const [policy] = of<K8sObject & { spec: { ingress: Rule[] } }>(policyObjects, 'NetworkPolicy');
    for (const rule of policy?.spec.ingress ?? [])
      for (const port of rule.ports) assert.ok(podPorts.has(port.port), port.port);
    const routerRules = (policy?.spec.ingress ?? []).filter((rule) =>
      rule.ports.some((p) => p.port === 'router'),
    );
    assert.equal(routerRules.length, 1);
    const [daemonSet] = of<Workload>(policyObjects, 'DaemonSet');
    assert.deepEqual(
      routerRules[0]?.from?.map((peer) => peer.podSelector?.matchLabels),
      [daemonSet?.spec.selector.matchLabels],
    );
    const monitorObjects = get('base + service-monitor');
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

  it('k3s and RKE2 mount containerd from their own paths, in the install and the cleanup', () => {
    const paths: Record<string, Record<string, string>> = {
      k3s: {
        'containerd-run': '/run/k3s/containerd',
        'containerd-content': '/var/lib/rancher/k3s/agent/containerd/io.containerd.content.v1.content',
        'containerd-config': '/var/lib/rancher/k3s/agent/etc/containerd',
        'containerd-certs': '/var/lib/rancher/k3s/agent/etc/containerd/certs.d',
      },
      rke2: {
        'containerd-run': '/run/k3s/containerd',
        'containerd-content': '/var/lib/rancher/rke2/agent/containerd/io.containerd.content.v1.content',
        'containerd-config': '/var/lib/rancher/rke2/agent/etc/containerd',
        'containerd-certs': '/var/lib/rancher/rke2/agent/etc/containerd/certs.d',
      },
    };
    assert.deepEqual(Object.keys(paths).sort(), DISTROS);
    for (const [distro, expected] of Object.entries(paths)) {
      for (const name of [`base + ${distro}`, `cleanup + ${distro}`]) {
        for (const workload of workloads(get(name))) {
          const volumes = workload.spec.template.spec.volumes ?? [];
          const containerd = volumes.filter((v) => v.name.startsWith('containerd-'));
          assert.ok(containerd.length > 0, name);
          for (const volume of containerd)
            assert.equal(volume.hostPath?.path, expected[volume.name], `${name}: ${volume.name}`);
        }
      }
    }
  });
});
