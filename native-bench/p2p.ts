import { type ChildProcess, fork, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../test/harness/process.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';

// P2P routing costs on 8 loopback nodes, each its own process: advertise CPU per key; a cold lookup's time
// to its first provider and a search for an absent key, idle and with both cores pinned by busy loops; the
// DHT lookups per second a node makes to keep hot keys warm; RSS idle and with 2,000 advertised keys.
// Run: npm run bench -- p2p

const NODES = Number(process.env.BENCH_P2P_NODES ?? 8);
const KEYS = Number(process.env.BENCH_P2P_KEYS ?? 2000);
const LOOKUPS = Number(process.env.BENCH_P2P_LOOKUPS ?? 200);
const HOT_KEYS = Number(process.env.BENCH_P2P_HOT_KEYS ?? 100);
const WARM_SECONDS = Number(process.env.BENCH_P2P_WARM_SECONDS ?? 20);

class BenchNode {
  readonly child: ChildProcess;
  #next = 0;
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();

  constructor() {
    this.child = fork(fileURLToPath(new URL('./p2p-node.js', import.meta.url)), { stdio: 'inherit' });
    this.child.on('message', (message: { id: number; result?: unknown; error?: string }) => {
      const waiting = this.#waiting.get(message.id);
      this.#waiting.delete(message.id);
      if (message.error !== undefined) waiting?.reject(new Error(message.error));
      else waiting?.resolve(message.result);
    });
  }

  call<T>(command: Record<string, unknown>): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, command });
    });
  }
}

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};
const spread = (values: number[]): string =>
  `p50 ${quantile(values, 0.5).toFixed(1)} ms, p99 ${quantile(values, 0.99).toFixed(1)} ms`;

/** Two processes that spin on both cores until killed (bounded, in case this run dies). */
function busyLoops(): ChildProcess[] {
  const code = 'const end = Date.now() + 600000; while (Date.now() < end);';
  return [0, 1].map(() => spawn(process.execPath, ['-e', code], { stdio: 'ignore' }));
}

async function lookupRows(
  asker: BenchNode,
  present: string[],
  absent: string[],
  label: string,
): Promise<string[]> {
  const hits = await asker.call<{ found: number[]; absent: number[] }>({ op: 'lookup', keys: present });
  const misses = await asker.call<{ found: number[]; absent: number[] }>({ op: 'lookup', keys: absent });
  return [
    `${label}: cold lookup, first provider: ${spread(hits.found)} (${hits.found.length}/${present.length} found)`,
    `${label}: absent key, search ended: ${spread(misses.absent)} (${misses.absent.length}/${absent.length} ended with none)`,
  ];
}

export async function p2pBench(): Promise<string[]> {
  const dir = await shortTempDir('shoal-p2p-bench');
  const nodes = Array.from({ length: NODES }, () => new BenchNode());
  const first = nodes[0] as BenchNode;
  const asker = nodes[NODES - 1] as BenchNode;
  let loops: ChildProcess[] = [];
  try {
    const { addresses } = await first.call<{ addresses: string[] }>({
      op: 'start',
      dataDir: join(dir, 'n0'),
      registryPort: 5000,
      bootstrap: [],
    });
    for (const [i, node] of nodes.entries()) {
      if (i > 0)
        await node.call({
          op: 'start',
          dataDir: join(dir, `n${i}`),
          registryPort: 5000 + i,
          bootstrap: addresses,
        });
    }
    await waitFor(
      'bench nodes ready',
      async () =>
        (await Promise.all(nodes.map((node) => node.call<{ ready: boolean }>({ op: 'stats' })))).every(
          (s) => s.ready,
        ),
      30_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const idle = await first.call<{ rssMiB: number }>({ op: 'stats' });
    const keys = Array.from({ length: KEYS }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`);
    const advertised = await first.call<{ cpuMs: number; wallMs: number }>({ op: 'advertise', keys });
    const loaded = await first.call<{ rssMiB: number }>({ op: 'stats' });
    const sample = (offset: number): string[] =>
      Array.from({ length: LOOKUPS }, (_, i) => keys[(offset + i * 7919) % KEYS] as string);
    const absent = (tag: string): string[] =>
      Array.from({ length: LOOKUPS }, (_, i) => `sha256:${tag}${i.toString(16).padStart(60, '0')}`);
    const rows = await lookupRows(asker, sample(0), absent('a0a0'), 'idle');
    const hot = sample(1).slice(0, HOT_KEYS);
    const warm = await asker.call<{ requests: number; misses: number; lookups: number; seconds: number }>({
      op: 'warm',
      keys: hot,
      seconds: WARM_SECONDS,
      intervalMs: 100,
    });
    loops = busyLoops();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rows.push(...(await lookupRows(asker, sample(2), absent('b0b0'), 'busy (2 busy loops on 2 cores)')));
    return [
      `p2p routing on ${NODES} loopback nodes (separate processes):`,
      `advertise ${KEYS} keys from node 1: ${(advertised.cpuMs / KEYS).toFixed(1)} CPU-ms per key, ${(advertised.wallMs / 1000).toFixed(1)} s wall (16 at a time)`,
      ...rows.map((row) => `node ${NODES}, ${row}`),
      `staying warm: ${HOT_KEYS} hot keys asked every 100 ms for ${warm.seconds} s through the lookup cache: ` +
        `${(warm.lookups / warm.seconds).toFixed(1)} DHT lookups/s on the node for ${(warm.requests / warm.seconds).toFixed(0)} requests/s, ${warm.misses} misses`,
      `RSS of node 1: idle ${idle.rssMiB.toFixed(0)} MiB, with ${KEYS} advertised keys ${loaded.rssMiB.toFixed(0)} MiB`,
    ];
  } finally {
    for (const loop of loops) loop.kill('SIGKILL');
    await Promise.all(nodes.map((node) => node.call({ op: 'stop' }).catch(() => undefined)));
    await removeDir(dir);
  }
}
