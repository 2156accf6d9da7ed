import { readFile } from 'node:fs/promises';
import { run } from '../test/harness/process.js';
import { readUsage } from '../test/harness/process-usage.js';

/**
 * Downloads with curl to /dev/null (a native client, so the server is what is measured); returns bytes.
 * Follows redirects, as containerd does (a registry may send blob GETs to a CDN).
 */
export async function fetchAll(url: string): Promise<number> {
  const out = await run('curl', [
    '-sS',
    '--fail',
    '--location',
    '-o',
    '/dev/null',
    '-w',
    '%{size_download}',
    url,
  ]);
  return Number(out.trim());
}

/** GB/s of one round of `clients` concurrent full downloads of `expected` bytes each. */
export async function oneRound(url: string, clients: number, expected: number): Promise<number> {
  const started = process.hrtime.bigint();
  const lengths = await Promise.all(Array.from({ length: clients }, () => fetchAll(url)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (lengths.some((length) => length !== expected)) throw new Error(`short download from ${url}`);
  return (clients * expected) / seconds / 1e9;
}

/** Best of `rounds`: GB/s for `clients` concurrent full downloads. */
export async function throughput(
  url: string,
  clients: number,
  expected: number,
  rounds: number,
): Promise<number> {
  let best = 0;
  for (let round = 0; round < rounds; round++) best = Math.max(best, await oneRound(url, clients, expected));
  return best;
}

/** CPU seconds the whole machine (every core) has used so far: user, nice, system, irq and softirq. */
export async function machineCpuSeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq) / 100;
}

/** CPU seconds (user + system, every thread) a process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  return (await readUsage(pid)).cpuSeconds;
}
