import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '../test/harness/process.js';
import { seededEmbeddedBlob } from '../test/harness/seeded-store.js';
import { ShoalProcess, staticP2pArgs } from '../test/harness/shoal.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';
import { cpuSeconds, oneRound } from './measure.js';

// The price of checking every peer byte: a 1 GiB blob held by node A is pulled through node B (digest
// checked in B's worker pool) and through node C (--verify-remote=false, trusting A), against A serving it
// as a local hit. Three real processes and curl on one machine; rounds interleave the three so drift hits
// them alike. Run: npm run bench -- verify

const GiB = 1 << 30;
const SIZE = Number(process.env.BENCH_VERIFY_MIB ?? 1024) * (1 << 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export async function verifyBench(): Promise<string[]> {
  const work = await shortTempDir('shoal-bench-verify');
  const nodes: ShoalProcess[] = [];
  try {
    const digest = await seededEmbeddedBlob(join(work, 'a'), 'bench-verify', SIZE);
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const p2p = (name: string, i: number) =>
      staticP2pArgs({
        dataDir: join(work, name),
        routerPort: ports[i] as number,
        bootstrapPort: ports[0] as number,
      });
    const holder = new ShoalProcess(['--store', 'embedded', ...p2p('a', 0)]);
    const verified = new ShoalProcess(['--store', 'embedded', ...p2p('b', 1)]);
    const trusting = new ShoalProcess(['--store', 'embedded', '--verify-remote=false', ...p2p('c', 2)]);
    nodes.push(holder, verified, trusting);
    await Promise.all(nodes.map((node) => node.start()));
    const url = (node: ShoalProcess) => `${node.url}/v2/bench/blobs/${digest}`;
    for (const node of [verified, trusting]) {
      await waitFor(
        'blob found through the DHT',
        async () => (await fetch(url(node), { method: 'HEAD' })).status === 200,
        30_000,
      );
    }
    const best = { local: 0, verified: 0, trusting: 0 };
    // CPU seconds the relaying node spends per GiB: what checking costs, whatever the core count.
    const cpu = { verified: 0, trusting: 0 };
    const relay = async (node: ShoalProcess, key: 'verified' | 'trusting') => {
      const before = await cpuSeconds(node.pid);
      best[key] = Math.max(best[key], await oneRound(url(node), 1, SIZE));
      cpu[key] += ((await cpuSeconds(node.pid)) - before) / (SIZE / GiB) / ROUNDS;
    };
    for (let round = 0; round < ROUNDS; round++) {
      best.local = Math.max(best.local, await oneRound(url(holder), 1, SIZE));
      await relay(verified, 'verified');
      await relay(trusting, 'trusting');
    }
    const failures = await verified.metric('shoal_verify_total{kind="stream",result="DIGEST_MISMATCH"}');
    if (failures > 0) throw new Error('an honest transfer failed its digest check');
    const gbs = (value: number) => `${value.toFixed(2)} GB/s`;
    return [
      `peer-hit benchmark, ${(SIZE / GiB).toFixed(2)} GiB blob, 1 client, best of ${ROUNDS} (3 nodes + curl on one machine):`,
      '| measure | throughput | ratio |',
      '|---|---|---|',
      `| local hit on A | ${gbs(best.local)} | 1.00 |`,
      `| peer hit through C, --verify-remote=false | ${gbs(best.trusting)} | ${(best.trusting / best.local).toFixed(2)} of local |`,
      `| peer hit through B, verified | ${gbs(best.verified)} | ${(best.verified / best.local).toFixed(2)} of local |`,
      `| verified / unverified (goal ≥ 0.85) | | ${(best.verified / best.trusting).toFixed(2)} |`,
      `relaying node CPU per GiB: verified ${cpu.verified.toFixed(2)} s, unverified ${cpu.trusting.toFixed(2)} s (${availableParallelism()} cores on this machine)`,
    ];
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    await removeDir(work);
  }
}
