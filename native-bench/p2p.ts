import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../test/harness/process.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';

// P2P routing costs on 5 loopback nodes, each its own process: advertise CPU per key, lookup latency,
// RSS idle and with 2,000 advertised keys. Run: npm run bench -- p2p

const NODES = 5;
const KEYS = Number(process.env.BENCH_P2P_KEYS ?? 2000);
const LOOKUPS = Number(process.env.BENCH_P2P_LOOKUPS ?? 200);

class BenchNode {
  readonly child: ChildProcess;
  #next = 0;
  readonly #waiting = new Map<number, (value: unknown) => void>();

  constructor() {
    this.child = fork(fileURLToPath(new URL('./p2p-node.js', import.meta.url)), { stdio: 'inherit' });
    this.child.on('message', (message: { id: number; result?: unknown; error?: string }) => {
      const resolve = this.#waiting.get(message.id);
      this.#waiting.delete(message.id);
      if (message.error !== undefined) throw new Error(message.error);
      resolve?.(message.result);
    });
  }

  call<T>(command: Record<string, unknown>): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve) => {
      this.#waiting.set(id, resolve as (value: unknown) => void);
      this.child.send({ id, command });
    });
  }
}

const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

export async function p2pBench(): Promise<string[]> {
  const dir = await shortTempDir('shoal-p2p-bench');
  const nodes = Array.from({ length: NODES }, () => new BenchNode());
  try {
    const first = await (nodes[0] as BenchNode).call<{ addresses: string[] }>({
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
          bootstrap: first.addresses,
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
    const idle = await (nodes[0] as BenchNode).call<{ rssMiB: number }>({ op: 'stats' });
    const keys = Array.from({ length: KEYS }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`);
    const advertised = await (nodes[0] as BenchNode).call<{ cpuMs: number; wallMs: number }>({
      op: 'advertise',
      keys,
    });
    const loaded = await (nodes[0] as BenchNode).call<{ rssMiB: number }>({ op: 'stats' });
    const sample = Array.from({ length: LOOKUPS }, (_, i) => keys[(i * 7919) % KEYS] as string);
    const { latencies } = await (nodes[NODES - 1] as BenchNode).call<{ latencies: number[] }>({
      op: 'lookup',
      keys: sample,
    });
    const sorted = [...latencies].sort((a, b) => a - b);
    return [
      `p2p routing on ${NODES} loopback nodes (separate processes):`,
      `advertise ${KEYS} keys from node 1: ${(advertised.cpuMs / KEYS).toFixed(1)} CPU-ms per key, ${(advertised.wallMs / 1000).toFixed(1)} s wall (16 at a time)`,
      `lookup from node ${NODES}, first provider: p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, 0.99).toFixed(1)} ms (${latencies.length}/${LOOKUPS} found)`,
      `RSS of node 1: idle ${idle.rssMiB.toFixed(0)} MiB, with ${KEYS} advertised keys ${loaded.rssMiB.toFixed(0)} MiB`,
    ];
  } finally {
    await Promise.all(nodes.map((node) => node.call({ op: 'stop' }).catch(() => undefined)));
    await removeDir(dir);
  }
}
