import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DebugState } from '../../src/main/debug/state.js';
import { Child, freePort, run, waitFor } from './process.js';

export const CLI = fileURLToPath(new URL('../../src/main/cli.js', import.meta.url));

/** The value of one metric sample (`name{labels}` exactly as exposed) at `origin`'s /metrics, 0 when absent. */
export async function readMetric(origin: string, sample: string): Promise<number> {
  const text = await metricsText(origin);
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

/**
 * A histogram's bucket counts (`le` → count), summed over every label set: how many observations were at
 * most each bound.
 */
export async function readHistogram(origin: string, name: string): Promise<Map<string, number>> {
  const buckets = new Map<string, number>();
  for (const { labels, value } of metricSamples(await metricsText(origin), `${name}_bucket`)) {
    const le = /le="([^"]+)"/.exec(labels)?.[1];
    if (le !== undefined) buckets.set(le, (buckets.get(le) ?? 0) + value);
  }
  return buckets;
}

/** The smallest bucket bound (`le`) of a histogram read by readHistogram that holds every observation. */
export function boundOfAll(buckets: Map<string, number>): string | undefined {
  const all = buckets.get('+Inf') ?? 0;
  return [...buckets].find(([, count]) => count === all)?.[0];
}

/** The Prometheus text a node's metrics port (`origin`) exposes now. */
export async function metricsText(origin: string): Promise<string> {
  return (await fetch(`${origin}/metrics`)).text();
}

/** Every sample of `name` in Prometheus `text`: its label set as written (`{…}`, or empty) and its value. */
export function metricSamples(text: string, name: string): Array<{ labels: string; value: number }> {
  const samples: Array<{ labels: string; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    const space = line.lastIndexOf(' ');
    samples.push({ labels: line.slice(name.length, space), value: Number(line.slice(space + 1)) });
  }
  return samples;
}

/** The sum of `name`'s samples whose label set passes `keep` (every one, unless told). */
export function sumMetric(
  text: string,
  name: string,
  keep: (labels: string) => boolean = () => true,
): number {
  return metricSamples(text, name).reduce((sum, s) => (keep(s.labels) ? sum + s.value : sum), 0);
}

/** A shoal process started through its real CLI. */
export class ShoalProcess {
  readonly args: readonly string[];
  /** Loopback address the registry binds (tests give nodes their own 127.x address). */
  readonly host: string;
  port = 0;
  /** Port of the node's metrics endpoint. */
  metricsPort = 0;
  /** Port of the node's admin endpoint (always on the node's loopback address). */
  adminPort = 0;
  #child: Child | undefined;

  constructor(args: readonly string[], options: { host?: string } = {}) {
    this.args = args;
    this.host = options.host ?? '127.0.0.1';
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get output(): string {
    return this.#child?.output ?? '';
  }

  get running(): boolean {
    return this.#child?.running ?? false;
  }

  /** Picks the node's ports now (start does, unless this ran first): so its URL can be written down before it starts. */
  async reservePorts(): Promise<void> {
    if (this.port !== 0) return;
    this.port = await freePort();
    this.metricsPort = await freePort();
    this.adminPort = await freePort();
  }

  async start(): Promise<void> {
    await this.reservePorts();
    const env = { ...process.env, LOG_LEVEL: process.env.SHOAL_TEST_LOG_LEVEL ?? 'warn' };
    const addresses = [
      '--registry-addr',
      `${this.host}:${this.port}`,
      '--metrics-addr',
      `${this.host}:${this.metricsPort}`,
      '--admin-addr',
      `${this.host}:${this.adminPort}`,
    ];
    this.#child = new Child(process.execPath, [CLI, 'registry', ...addresses, ...this.args], env);
    const child = this.#child;
    await waitFor(
      'shoal',
      async () => (await fetch(`${this.url}/livez`)).status === 200,
      // Generous: on 2 busy cores, right after a test that wrote gigabytes, start-up can take seconds.
      30_000,
      () => (child.running ? undefined : `exited:\n${child.output}`),
    );
  }

  /** Waits until `/readyz` answers 200: what a kubelet waits for before it counts the node in. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor('shoal ready', async () => (await fetch(`${this.url}/readyz`)).status === 200, timeoutMs);
  }

  /** The node's debug page state (`GET /debug/state` on its metrics port). */
  async debugState(): Promise<DebugState> {
    return (await (await fetch(`http://${this.host}:${this.metricsPort}/debug/state`)).json()) as DebugState;
  }

  /** Runs `shoal doctor` against this node with `args`; resolves its exit code and what it printed. */
  async doctor(args: readonly string[]): Promise<{ code: number | null; output: string }> {
    const child = new Child(process.execPath, [
      CLI,
      'doctor',
      '--registry-addr',
      `${this.host}:${this.port}`,
      '--metrics-addr',
      `${this.host}:${this.metricsPort}`,
      ...args,
    ]);
    const code = await child.finished;
    return { code, output: child.output };
  }

  /** The value of one metric sample (`name{labels}` exactly as exposed), 0 when absent. */
  metric(sample: string): Promise<number> {
    return readMetric(`http://${this.host}:${this.metricsPort}`, sample);
  }

  /** Runs `shoal invalidate` against this node's admin endpoint; resolves with what it printed. */
  invalidate(name: string): Promise<string> {
    return run(process.execPath, [CLI, 'invalidate', '--admin-addr', `${this.host}:${this.adminPort}`, name]);
  }

  /** Sends a signal (SIGTERM: what Kubernetes sends) without waiting. */
  kill(signal: NodeJS.Signals): void {
    this.#child?.process.kill(signal);
  }

  /** The exit code once the process has exited and its output is read (null: killed by a signal). */
  get exited(): Promise<number | null> {
    return this.#child?.finished ?? Promise.resolve(null);
  }

  /** SIGTERM, then SIGKILL after `graceMs` (0: SIGKILL at once, a crash). */
  async stop(graceMs = 5000): Promise<void> {
    if (graceMs === 0) this.#child?.process.kill('SIGKILL');
    await this.#child?.stop(graceMs);
  }
}

/**
 * Flags of a P2P node on 127.0.0.1 that joins by static bootstrap through the router on `bootstrapPort`.
 * Every node gets the same list, the bootstrap node included: it must skip itself. Every timing flag is
 * left at its default: that is what users run.
 */
export function staticP2pArgs(opts: {
  dataDir: string;
  routerPort: number;
  bootstrapPort: number;
}): string[] {
  return [
    '--data-dir',
    opts.dataDir,
    '--router-addr',
    `127.0.0.1:${opts.routerPort}`,
    '--bootstrap-kind',
    'static',
    '--static-bootstrap-peers',
    `/ip4/127.0.0.1/tcp/${opts.bootstrapPort}`,
  ];
}

/**
 * A node with an embedded store in `dataDir` that joins the cluster through the router on `bootstrapPort`
 * (its own `routerPort` for the first node), at `host`, with `extra` flags.
 */
export function embeddedMember(
  opts: { dataDir: string; routerPort: number; bootstrapPort: number; host?: string },
  extra: readonly string[] = [],
): ShoalProcess {
  const { host, ...p2p } = opts;
  return new ShoalProcess(
    ['--store', 'embedded', ...staticP2pArgs(p2p), ...extra],
    host === undefined ? {} : { host },
  );
}

/**
 * Flags of node `i` of an embedded-store P2P cluster that pulls through from `upstream` (a plain-http
 * registry host): its data in `<dir>/n<i>`, its router on `routerPorts[i]`, joining through node 0's.
 */
export function clusterPullThroughArgs(
  dir: string,
  i: number,
  routerPorts: readonly number[],
  upstream: string,
): string[] {
  return [
    '--store',
    'embedded',
    ...staticP2pArgs({
      dataDir: join(dir, `n${i}`),
      routerPort: routerPorts[i] as number,
      bootstrapPort: routerPorts[0] as number,
    }),
    '--upstream-fallback',
    '--insecure-registries',
    upstream,
    '--mirrored-registries',
    `http://${upstream}`,
  ];
}

/** Runs `shoal configuration` so `containerdHostsDir` sends pulls from `registryUrl` to `mirrorUrl` first. */
export async function configureMirror(
  containerdHostsDir: string,
  registryUrl: string,
  mirrorUrl: string,
): Promise<void> {
  await run(process.execPath, [
    CLI,
    'configuration',
    '--containerd-registry-config-path',
    containerdHostsDir,
    '--mirrored-registries',
    registryUrl,
    '--mirror-targets',
    mirrorUrl,
  ]);
}

/** Runs `shoal import`: copies the OCI layout at `layoutDir` into the embedded store at `dataDir`. */
export async function importLayout(
  dataDir: string,
  layoutDir: string,
  registry: string,
  repository: string,
): Promise<void> {
  await run(process.execPath, [
    CLI,
    'import',
    '--data-dir',
    dataDir,
    '--registry',
    registry,
    '--repository',
    repository,
    layoutDir,
  ]);
}

/** Flags of a shoal that serves from a harness containerd. */
export function containerdStoreArgs(containerd: {
  socket: string;
  namespace: string;
  contentPath: string;
}): string[] {
  return [
    '--store',
    'containerd',
    '--containerd-sock',
    containerd.socket,
    '--containerd-namespace',
    containerd.namespace,
    '--containerd-content-path',
    containerd.contentPath,
  ];
}

/** Flags of a standalone pull-through node with an embedded store, whose upstream is the plain-http `upstream`. */
export function pullThroughArgs(dataDir: string, upstream: string): string[] {
  return [
    '--store',
    'embedded',
    '--data-dir',
    dataDir,
    '--upstream-fallback',
    '--mirrored-registries',
    `http://${upstream}`,
    '--insecure-registries',
    upstream,
  ];
}

/** Waits until every node's routing table holds every other node, so all elect the same owners. */
export async function waitForMesh(nodes: readonly ShoalProcess[], timeoutMs = 60_000): Promise<void> {
  await waitFor(
    'every node knows every other',
    async () =>
      (await Promise.all(nodes.map((node) => node.metric('shoal_router_members')))).every(
        (members) => members === nodes.length - 1,
      ),
    timeoutMs,
  );
}

/**
 * The flags a node (or `shoal doctor`) needs to check a harness containerd's setup: the registries it
 * mirrors, where `hosts.toml` lives, and containerd's config file.
 */
export function preflightArgs(
  containerd: { hostsDir: string; configFile: string },
  mirroredRegistry: string,
): string[] {
  return [
    '--mirrored-registries',
    mirroredRegistry,
    '--containerd-registry-config-path',
    containerd.hostsDir,
    '--containerd-config',
    containerd.configFile,
  ];
}

/**
 * A shoal serving with `storeArgs`, and beside it an empty embedded-store member that bootstraps through it
 * (a node advertises what it holds only when it is not alone), both started, at their defaults.
 */
export async function startWithPeer(
  dir: string,
  storeArgs: readonly string[],
): Promise<{ shoal: ShoalProcess; peer: ShoalProcess }> {
  const routerPort = await freePort();
  const shoal = new ShoalProcess([
    ...storeArgs,
    ...staticP2pArgs({ dataDir: join(dir, 'data'), routerPort, bootstrapPort: routerPort }),
  ]);
  const peer = new ShoalProcess([
    '--store',
    'embedded',
    ...staticP2pArgs({ dataDir: join(dir, 'peer'), routerPort: await freePort(), bootstrapPort: routerPort }),
  ]);
  await shoal.start();
  await peer.start();
  return { shoal, peer };
}
