import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Containerd } from '../test/harness/containerd.js';
import { cachedLayout, type OciDescriptor, pushLayout } from '../test/harness/images.js';
import { freePort, waitFor } from '../test/harness/process.js';
import { DistributionRegistry } from '../test/harness/registry.js';
import { embeddedMember, importLayout, type ShoalProcess } from '../test/harness/shoal.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';
import { cpuSeconds, machineCpuSeconds } from './measure.js';

// What a user waits for: containerd fetching a real-shaped image (64 × 1 MiB and 4 × 16 MiB layers, 68
// blobs) through its node's shoal from a peer, against the same fetch straight from a CNCF distribution
// registry on loopback. Each fetch goes into a fresh containerd (containerd shares content across
// namespaces and would skip the transfer), the two kinds interleaved, median of ROUNDS. Also counted: the
// requests that cross the wire per blob (registry-port requests at the node, HEADs and GETs it sent to
// the peer), from the nodes' own metrics.
// Run: npm run bench -- pull

const MiB = 1 << 20;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const REPOSITORY = 'bench/pull';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Sum of every sample of `family` whose labels contain `match`, from a node's /metrics. */
async function metricSum(node: ShoalProcess, family: string, match = ''): Promise<number> {
  const text = await (await fetch(`http://${node.host}:${node.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${family}{`) && !line.startsWith(`${family} `)) continue;
    if (!line.includes(match)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface Fetched {
  /** Until ctr exits, in ms. ctr redraws its progress every 100 ms and exits only on a redraw. */
  wallMs: number;
  /** Until the last blob was committed to the content store (its newest ctime), in ms. */
  storedMs: number;
  /** CPU seconds the whole machine used meanwhile. */
  cpu: number;
  /** Of which containerd's. */
  containerdCpu: number;
}

/** Newest ctime among the committed blobs of a content store, in ms since the epoch. */
async function lastCommit(contentPath: string): Promise<number> {
  const dir = join(contentPath, 'blobs', 'sha256');
  let newest = 0;
  for (const name of await readdir(dir)) newest = Math.max(newest, (await stat(join(dir, name))).ctimeMs);
  return newest;
}

/** One fetch of every blob of `ref` into a fresh containerd. */
async function fetchInto(
  work: string,
  name: string,
  ref: string,
  mirror: string | undefined,
): Promise<Fetched> {
  const containerd = new Containerd(join(work, name));
  await containerd.start();
  try {
    const registryHost = ref.slice(0, ref.indexOf('/'));
    await mkdir(join(containerd.hostsDir, registryHost), { recursive: true });
    const hosts =
      mirror === undefined
        ? `server = "http://${registryHost}"\n`
        : `server = "http://${registryHost}"\n\n[host."${mirror}"]\n  capabilities = ["pull", "resolve"]\n`;
    await writeFile(join(containerd.hostsDir, registryHost, 'hosts.toml'), hosts);
    const cpuBefore = await machineCpuSeconds();
    const containerdBefore = await cpuSeconds(containerd.pid);
    const startedAt = Date.now();
    const started = performance.now();
    await containerd.ctr(['content', 'fetch', '--plain-http', '--hosts-dir', containerd.hostsDir, ref]);
    const wallMs = performance.now() - started;
    const cpu = (await machineCpuSeconds()) - cpuBefore;
    const containerdCpu = (await cpuSeconds(containerd.pid)) - containerdBefore;
    return { wallMs, storedMs: (await lastCommit(containerd.contentPath)) - startedAt, cpu, containerdCpu };
  } finally {
    await containerd.stop();
    await removeDir(join(work, name));
  }
}

export async function containerdPullBench(): Promise<string[]> {
  const { dir: layout, result: image } = await cachedLayout('bench-pull-68', async (writer) => {
    const layers = [
      ...Array.from({ length: 64 }, (_, i) => ({ size: MiB, seed: `pull-small-${i}`, gzip: false })),
      ...Array.from({ length: 4 }, (_, i) => ({ size: 16 * MiB, seed: `pull-big-${i}`, gzip: false })),
    ];
    const built = await writer.addImage({ layers });
    writer.tag(built.manifest, 'bench');
    return built;
  });
  const blobs: OciDescriptor[] = [image.config, ...image.layers];
  const work = await shortTempDir('shoal-bench-pull');
  const registry = new DistributionRegistry(join(work, 'registry'));
  const nodes: ShoalProcess[] = [];
  try {
    await registry.start();
    await pushLayout(layout, 'bench', registry.host, REPOSITORY);
    // The peer holds the image; the node holds nothing, so every blob comes from the peer on every round.
    await importLayout(join(work, 'peer'), layout, registry.host, REPOSITORY);
    const [peerRouter, nodeRouter] = [await freePort(), await freePort()];
    const mirrored = ['--mirrored-registries', `http://${registry.host}`, '--log-level', 'error'];
    const at = (name: string, routerPort: number, host: string) => ({
      dataDir: join(work, name),
      routerPort,
      bootstrapPort: peerRouter,
      host,
    });
    const peer = embeddedMember(at('peer', peerRouter, '127.0.0.1'), mirrored);
    // Extra flags for the node, to take a setting's cost apart (BENCH_NODE_FLAGS="--verify-remote=false").
    const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
    const node = embeddedMember(at('node', nodeRouter, '127.0.0.2'), [...mirrored, ...extra]);
    nodes.push(peer, node);
    await peer.start();
    await node.start();
    const ref = `${registry.host}/${REPOSITORY}@${image.manifest.digest}`;
    const config = image.config.digest;
    await waitFor(
      'the image found through the peer',
      async () =>
        (await fetch(`${node.url}/v2/${REPOSITORY}/blobs/${config}?ns=${registry.host}`, { method: 'HEAD' }))
          .status === 200,
      60_000,
    );
    const direct: Fetched[] = [];
    const through: Fetched[] = [];
    const registryCpu: number[] = [];
    const nodeCpu: number[] = [];
    const peerCpu: number[] = [];
    const wire = { requests: 0, heads: 0, gets: 0, fetches: 0 };
    // Client requests at the node's registry port, and the HEADs and GETs it sent the peer, so far.
    const wireSample = () =>
      Promise.all([
        metricSum(node, 'shoal_requests_total', 'requester="client"'),
        metricSum(node, 'shoal_peer_request_duration_seconds_count', 'method="HEAD"'),
        metricSum(node, 'shoal_peer_request_duration_seconds_count', 'method="GET"'),
      ]);
    for (let round = 0; round < ROUNDS; round++) {
      const registryBefore = await cpuSeconds(registry.pid);
      direct.push(await fetchInto(work, `d${round}`, ref, undefined));
      registryCpu.push((await cpuSeconds(registry.pid)) - registryBefore);
      const before = await wireSample();
      const cpuBefore = [await cpuSeconds(node.pid), await cpuSeconds(peer.pid)];
      through.push(await fetchInto(work, `s${round}`, ref, node.url));
      nodeCpu.push((await cpuSeconds(node.pid)) - (cpuBefore[0] ?? 0));
      peerCpu.push((await cpuSeconds(peer.pid)) - (cpuBefore[1] ?? 0));
      const after = await wireSample();
      wire.requests += (after[0] ?? 0) - (before[0] ?? 0);
      wire.heads += (after[1] ?? 0) - (before[1] ?? 0);
      wire.gets += (after[2] ?? 0) - (before[2] ?? 0);
      wire.fetches++;
    }
    const perFetch = (n: number) => (n / wire.fetches).toFixed(1);
    /** The median of `values` and every value, in `unit` (ms shown as s). */
    const series = (values: number[], unit = 's') => {
      const shown = values.map((value) => (unit === 's' ? value / 1000 : value));
      return `${median(shown).toFixed(2)} ${unit} (${shown.map((value) => value.toFixed(2)).join(', ')})`;
    };
    const line = (label: string, runs: Fetched[], pick: (run: Fetched) => number, unit = 's') =>
      `  ${label} ${series(runs.map(pick), unit)}`;
    const ratio = (pick: (run: Fetched) => number) =>
      (median(through.map(pick)) / median(direct.map(pick))).toFixed(2);
    return [
      `containerd fetch of a ${blobs.length}-blob image (64 × 1 MiB, 4 × 16 MiB layers), fresh containerd each time, median of ${ROUNDS} interleaved.`,
      'Until the last blob is in the content store:',
      line('straight from distribution', direct, (run) => run.storedMs),
      line('through shoal from a peer ', through, (run) => run.storedMs),
      `  ratio shoal / distribution ${ratio((run) => run.storedMs)}`,
      'Until ctr exits (it exits on a 100 ms progress tick, so these move in steps of 0.1 s):',
      line('straight from distribution', direct, (run) => run.wallMs),
      line('through shoal from a peer ', through, (run) => run.wallMs),
      `  ratio shoal / distribution ${ratio((run) => run.wallMs)}`,
      'CPU seconds on the machine (2 shoal processes, containerd, ctr, and distribution when used):',
      line('straight from distribution', direct, (run) => run.cpu, 'CPU s'),
      line('through shoal from a peer ', through, (run) => run.cpu, 'CPU s'),
      `  of which containerd ${median(direct.map((run) => run.containerdCpu)).toFixed(2)} CPU s straight, ${median(through.map((run) => run.containerdCpu)).toFixed(2)} CPU s through shoal; distribution ${median(registryCpu).toFixed(2)} CPU s`,
      `  of which the node's shoal ${series(nodeCpu, 'CPU s')}, the peer's ${series(peerCpu, 'CPU s')}`,
      `  on the wire per fetch (manifest + ${blobs.length} blobs): ${perFetch(wire.requests)} requests to the node's registry port; the node sent the peer ${perFetch(wire.heads)} HEADs and ${perFetch(wire.gets)} GETs`,
    ];
  } finally {
    for (const node of nodes) await node.stop();
    await registry.stop();
    await removeDir(work);
  }
}
