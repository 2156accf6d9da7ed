import { join } from 'node:path';
import { Containerd } from './containerd.js';
import type { LinkShape, ShapedNetwork } from './netns.js';
import { NetnsShoal, NODE_PORTS } from './netns-shoal.js';
import { run } from './process.js';
import { DistributionRegistry } from './registry.js';
import { configureMirror, containerdStoreArgs } from './shoal.js';
import { removeDir } from './tmp.js';

/**
 * The drills' five nodes: links of 10, 5, 2 and 1 Gbit/s and one slow node at 100 Mbit/s. Their one-way
 * delays make round trips of 0.35–1.25 ms between nodes, plus what the delay line takes (about 0.6–1.6 ms
 * measured: test/e2e/shaped-network.test.ts).
 */
export const CLUSTER_LINKS: readonly LinkShape[] = [
  { mbit: 10_000, delayMs: 0.1 },
  { mbit: 5000, delayMs: 0.25 },
  { mbit: 2000, delayMs: 0.4 },
  { mbit: 1000, delayMs: 0.55 },
  { mbit: 100, delayMs: 0.7 },
];

/** One node of a shaped cluster: its containerd (the kubelet's namespace, k8s.io) and its shoal. */
export interface NetnsNode {
  containerd: Containerd;
  shoal: NetnsShoal;
}

/**
 * Node i of a cluster on `network`: a containerd, then (after `fill`, which may give containerd content
 * before shoal sees it) a shoal at its defaults beside it, joined by static bootstrap to the routers of
 * `nodes`, mirroring `registryUrl`, and containerd's hosts.toml pointing at it. The shoal is not started.
 */
export async function netnsNode(
  network: ShapedNetwork,
  dir: string,
  i: number,
  cluster: { nodes: readonly number[]; registryUrl: string },
  fill?: (containerd: Containerd) => Promise<void>,
): Promise<NetnsNode> {
  const containerd = new Containerd(join(dir, `c${i}`), 'k8s.io');
  await containerd.start();
  await fill?.(containerd);
  const routers = cluster.nodes.map((n) => `/ip4/${network.address(n)}/tcp/${NODE_PORTS.router}`);
  const shoal = new NetnsShoal(network, i, [
    ...containerdStoreArgs(containerd),
    '--data-dir',
    join(dir, `s${i}`),
    '--router-addr',
    `${network.address(i)}:${NODE_PORTS.router}`,
    '--bootstrap-kind',
    'static',
    '--static-bootstrap-peers',
    routers.join(','),
    '--mirrored-registries',
    cluster.registryUrl,
  ]);
  await configureMirror(containerd.hostsDir, cluster.registryUrl, shoal.address);
  return { containerd, shoal };
}

/** `netnsNode` for each of `cluster.nodes`, in order, none of them filled. */
export async function netnsNodes(
  network: ShapedNetwork,
  dir: string,
  cluster: { nodes: readonly number[]; registryUrl: string },
): Promise<NetnsNode[]> {
  const nodes: NetnsNode[] = [];
  for (const i of cluster.nodes) nodes.push(await netnsNode(network, dir, i, cluster));
  return nodes;
}

/**
 * A CNCF registry on node i's address, port 5000, started: the cluster's registry, outside it. `pushTo`
 * is the loopback address this process pushes test images to.
 */
export async function netnsRegistry(
  network: ShapedNetwork,
  dir: string,
  i: number,
): Promise<{ registry: DistributionRegistry; host: string; pushTo: string }> {
  const forwarded = async (): Promise<string> => `127.0.0.1:${await network.forward(i, 5000)}`;
  const registry = new DistributionRegistry(join(dir, 'registry'), {
    address: network.address(i),
    port: 5000,
    exec: (command, args) => network.exec(i, command, args),
    probe: async () => `http://${await forwarded()}`,
  });
  await registry.start();
  return { registry, host: `${network.address(i)}:5000`, pushTo: await forwarded() };
}

/** `ctr` on node i, against its containerd (in the kubelet's namespace unless told). */
export function ctrOn(
  network: ShapedNetwork,
  i: number,
  containerd: Containerd,
  args: readonly string[],
  namespace = containerd.namespace,
): Promise<string> {
  const [command, full] = network.exec(i, 'ctr', [
    '--address',
    containerd.socket,
    '--namespace',
    namespace,
    ...args,
  ]);
  return run(command, full, 300_000);
}

/** Stops a shaped cluster's shoals, then its containerds and registry, then removes its network and `dir`. */
export async function stopCluster(cluster: {
  shoals: readonly NetnsShoal[];
  containerds: readonly Containerd[];
  registry?: { stop(): Promise<void> } | undefined;
  network?: ShapedNetwork | undefined;
  dir: string;
}): Promise<void> {
  await Promise.all(cluster.shoals.map((shoal) => shoal.stop()));
  await Promise.all(cluster.containerds.map((containerd) => containerd.stop()));
  await cluster.registry?.stop();
  await cluster.network?.remove();
  await removeDir(cluster.dir);
}
