import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Containerd } from '../test/harness/containerd.js';
import { cachedLayout, type OciDescriptor, pushLayout } from '../test/harness/images.js';
import { freePort, waitFor } from '../test/harness/process.js';
import { DistributionRegistry } from '../test/harness/registry.js';
import { embeddedMember, importLayout, type ShoalProcess } from '../test/harness/shoal.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';

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

/** One fetch of every blob of `ref` into a fresh containerd; resolves the wall time in ms. */
async function fetchInto(
  work: string,
  name: string,
  ref: string,
  mirror: string | undefined,
): Promise<number> {
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
    const started = performance.now();
    await containerd.ctr(['content', 'fetch', '--plain-http', '--hosts-dir', containerd.hostsDir, ref]);
    return performance.now() - started;
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
    const direct: number[] = [];
    const through: number[] = [];
    const wire = { requests: 0, heads: 0, gets: 0, fetches: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await fetchInto(work, `d${round}`, ref, undefined));
      const before = await Promise.all([
        metricSum(node, 'shoal_requests_total', 'requester="client"'),
        metricSum(node, 'shoal_peer_request_duration_seconds_count', 'method="HEAD"'),
        metricSum(node, 'shoal_peer_request_duration_seconds_count', 'method="GET"'),
      ]);
      through.push(await fetchInto(work, `s${round}`, ref, node.url));
      const after = await Promise.all([
        metricSum(node, 'shoal_requests_total', 'requester="client"'),
        metricSum(node, 'shoal_peer_request_duration_seconds_count', 'method="HEAD"'),
        metricSum(node, 'shoal_peer_request_duration_seconds_count', 'method="GET"'),
      ]);
      wire.requests += (after[0] ?? 0) - (before[0] ?? 0);
      wire.heads += (after[1] ?? 0) - (before[1] ?? 0);
      wire.gets += (after[2] ?? 0) - (before[2] ?? 0);
      wire.fetches++;
    }
    const perFetch = (n: number) => (n / wire.fetches).toFixed(1);
    const d = median(direct);
    const s = median(through);
    return [
      `containerd fetch of a ${blobs.length}-blob image (64 × 1 MiB, 4 × 16 MiB layers), fresh containerd each time, median of ${ROUNDS} interleaved:`,
      `  straight from distribution ${(d / 1000).toFixed(2)} s (${direct.map((ms) => (ms / 1000).toFixed(2)).join(', ')})`,
      `  through shoal from a peer  ${(s / 1000).toFixed(2)} s (${through.map((ms) => (ms / 1000).toFixed(2)).join(', ')})`,
      `  ratio shoal / distribution ${(s / d).toFixed(2)}`,
      `  on the wire per fetch (manifest + ${blobs.length} blobs): ${perFetch(wire.requests)} requests to the node's registry port; the node sent the peer ${perFetch(wire.heads)} HEADs and ${perFetch(wire.gets)} GETs`,
    ];
  } finally {
    for (const node of nodes) await node.stop();
    await registry.stop();
    await removeDir(work);
  }
}
