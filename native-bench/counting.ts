import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { silentLogger } from '../src/main/log/logger.js';
import { Metrics } from '../src/main/metrics/metrics.js';
import { RequestLedger } from '../src/main/registry/ledger.js';
import type { Content } from '../src/main/store/store.js';
import { smallImage } from '../test/harness/fixtures.js';
import { freePort, waitFor } from '../test/harness/process.js';
import { CLI, importLayout } from '../test/harness/shoal.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';
import { cpuSeconds } from './measure.js';

// What counting requests costs: one shoal with request counting off (--request-metrics=false), on, and on
// with its info line per request (the default), serving local hits (the image's config blob, a few hundred
// bytes: per-request work, which is what counting adds to) and manifests by tag.
//
// Three measures. Instructions per request on the node's main thread, counted by valgrind's callgrind
// after a warm-up, over a fixed number of requests from one keep-alive connection, median of a few runs:
// one run repeats to within 2-3 % here (the JIT settles differently), and the main thread is where a
// request's work is done. The other threads (V8's compilers and GC helpers) are shown too; their counts
// swing by half between runs of one setting. Then the ledger alone (what counting adds), timed in process
// over many requests. Then the request rate and CPU time per request under 16 connections, which on this
// shared 2-core machine move by 10 to 40 % between rounds of one setting: shown, but they cannot resolve a
// few per cent.
// Logs go to a file, as a container runtime keeps them. Run: npm run bench -- counting

const WARM = Number(process.env.BENCH_COUNTING_WARM ?? 2000);
const REPEATS = Number(process.env.BENCH_COUNTING_REPEATS ?? 3);
const LEDGER_LOOPS = 300_000;
const COUNTED = Number(process.env.BENCH_COUNTING_REQUESTS ?? 1000);
const RATE_SECONDS = Number(process.env.BENCH_COUNTING_SECONDS ?? 5);
const RATE_ROUNDS = Number(process.env.BENCH_COUNTING_ROUNDS ?? 3);

const SETTINGS = {
  off: ['--request-metrics=false', '--log-level', 'warn'],
  counted: ['--request-metrics=true', '--log-level', 'warn'],
  'counted and logged (default)': ['--request-metrics=true', '--log-level', 'info'],
} as const;
type Setting = keyof typeof SETTINGS;

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';
const exec = promisify(execFile);

interface Node {
  child: ChildProcess;
  /** The shoal process itself (under valgrind, its pid is valgrind's). */
  pid: number;
  registry: string;
}

interface Targets {
  blob: string;
  manifest: string;
}

async function startNode(
  dataDir: string,
  logFile: string,
  flags: readonly string[],
  under: readonly string[],
): Promise<Node> {
  const [registry, metrics, admin] = [await freePort(), await freePort(), await freePort()];
  const log = await open(logFile, 'a');
  const args = [
    CLI,
    'registry',
    '--store',
    'embedded',
    '--data-dir',
    dataDir,
    '--registry-addr',
    `127.0.0.1:${registry}`,
    '--metrics-addr',
    `127.0.0.1:${metrics}`,
    '--admin-addr',
    `127.0.0.1:${admin}`,
    ...flags,
  ];
  const [command, ...prefix] = under.length === 0 ? [process.execPath] : [...under, process.execPath];
  const child = spawn(command as string, [...prefix, ...args], { stdio: ['ignore', 'ignore', log.fd] });
  await log.close();
  const node = {
    child,
    pid: child.pid ?? 0,
    registry: `http://127.0.0.1:${registry}`,
  };
  // Under valgrind a node takes tens of seconds to start.
  await waitFor('shoal', async () => (await fetch(`${node.registry}/livez`)).ok, 180_000);
  return node;
}

async function stopNode(node: Node): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  const exited = new Promise((resolve) => node.child.once('exit', resolve));
  node.child.kill('SIGKILL');
  await exited;
}

function targets(node: Node, registry: string, tag: string, blob: string): Targets {
  return {
    blob: `${node.registry}/v2/app/blobs/${blob}?ns=${registry}`,
    manifest: `${node.registry}/v2/app/manifests/${tag}?ns=${registry}`,
  };
}

async function requests(url: string, amount: number): Promise<number> {
  const result = await autocannon({ url, connections: 1, amount, headers: { Accept: MANIFEST_ACCEPT } });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} failed requests to ${url}`);
  return result.requests.total;
}

/** Instructions per request on the main thread and on every thread, for each kind, under callgrind. */
async function instructions(
  dataDir: string,
  work: string,
  flags: readonly string[],
  ids: { registry: string; tag: string; blob: string },
): Promise<Record<keyof Targets, { main: number; all: number }>> {
  const out = join(work, `callgrind-${Math.random().toString(36).slice(2)}`);
  const node = await startNode(dataDir, join(work, 'shoal.log'), flags, [
    'valgrind',
    '--tool=callgrind',
    '--smc-check=all-non-file',
    '--separate-threads=yes',
    '--instr-atstart=no',
    `--callgrind-out-file=${out}.%p`,
  ]);
  try {
    const urls = targets(node, ids.registry, ids.tag, ids.blob);
    await requests(urls.blob, WARM);
    await requests(urls.manifest, WARM);
    const result = {} as Record<keyof Targets, { main: number; all: number }>;
    for (const [part, kind] of [
      [1, 'blob'],
      [2, 'manifest'],
    ] as const) {
      await exec('callgrind_control', ['-i', 'on', String(node.pid)]);
      const served = await requests(urls[kind], COUNTED);
      await exec('callgrind_control', ['-i', 'off', String(node.pid)]);
      await exec('callgrind_control', ['-d', String(node.pid)]);
      // Each dump is `<file>.<pid>.<part>-<thread>`; thread 01 is the main thread.
      await waitFor(`callgrind dump ${part}`, async () =>
        (await readdir(work)).some((name) =>
          name.startsWith(`${out.split('/').pop()}.${node.pid}.${part}-01`),
        ),
      );
      let main = 0;
      let all = 0;
      for (const name of await readdir(work)) {
        const match = new RegExp(`^${out.split('/').pop()}\\.${node.pid}\\.${part}-(\\d+)$`).exec(name);
        if (match === null) continue;
        const total = Number(/^totals: (\d+)/m.exec(await readFile(join(work, name), 'utf8'))?.[1] ?? 0);
        all += total;
        if (match[1] === '01') main += total;
      }
      result[kind] = { main: main / served, all: all / served };
    }
    return result;
  } finally {
    await stopNode(node);
  }
}

/** Requests per second and the process's CPU microseconds per request under 16 connections. */
async function underLoad(node: Node, url: string): Promise<{ rate: number; cpuUs: number }> {
  const before = await cpuSeconds(node.pid);
  const result = await autocannon({
    url,
    connections: 16,
    duration: RATE_SECONDS,
    headers: { Accept: MANIFEST_ACCEPT },
  });
  const cpu = (await cpuSeconds(node.pid)) - before;
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} failed requests to ${url}`);
  return { rate: result.requests.average, cpuUs: (cpu / result.requests.total) * 1e6 };
}

/**
 * What counting adds to one request, timed in process: a request begun, traced as the handler traces a
 * manifest by tag, ended and counted into real metric families, at the default --log-level's threshold
 * for its line turned off (the line is measured by the node runs above).
 */
function ledgerMicros(): number {
  const metrics = new Metrics();
  const quiet = { ...silentLogger(), isLevelEnabled: () => false };
  const ledger = new RequestLedger(
    { recorder: metrics.requests(() => 0), log: quiet },
    { mirroredRegistries: ['bench.invalid'] },
  );
  const content = {
    digest: `sha256:${'a'.repeat(64)}`,
    size: 403,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    open: () => Promise.reject(new Error('not opened')),
  } as unknown as Content;
  const started = performance.now();
  for (let i = 0; i < LEDGER_LOOPS; i++) {
    const open = ledger.begin();
    const trace = open.trace;
    trace.kind = 'manifest';
    trace.registry = 'bench.invalid';
    trace.repository = 'app';
    trace.reference = 'v1';
    trace.content = content;
    open.firstByte();
    open.end({ method: 'GET', status: 200, bytes: 403, cut: false });
  }
  return ((performance.now() - started) * 1000) / LEDGER_LOOPS;
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export async function countingBench(): Promise<string[]> {
  const image = await smallImage('counting-bench');
  const work = await shortTempDir('shoal-counting-bench');
  const ids = { registry: 'bench.invalid', tag: image.tag, blob: image.image.config.digest };
  const settings = Object.keys(SETTINGS) as Setting[];
  const dataOf = (setting: Setting): string => join(work, setting.replace(/\W+/g, '-'));
  const rows = [
    `counting bench: ${image.image.config.size} B config blob and the manifest by tag, from the registry port`,
  ];
  try {
    for (const setting of settings) await importLayout(dataOf(setting), image.dir, ids.registry, 'app');
    const repeats = new Map<Setting, Array<Record<keyof Targets, { main: number; all: number }>>>();
    for (let repeat = 0; repeat < REPEATS; repeat++)
      for (const setting of settings)
        repeats.set(setting, [
          ...(repeats.get(setting) ?? []),
          await instructions(dataOf(setting), work, SETTINGS[setting], ids),
        ]);
    const counted = (setting: Setting, kind: keyof Targets): { main: number; all: number } => {
      const mine = repeats.get(setting) ?? [];
      return {
        main: median(mine.map((run) => run[kind].main)),
        all: median(mine.map((run) => run[kind].all)),
      };
    };
    rows.push(
      `  instructions per request (callgrind, ${COUNTED} requests after ${WARM} warm-up, one connection, median of ${REPEATS} runs):`,
    );
    for (const kind of ['blob', 'manifest'] as const) {
      const off = counted('off', kind);
      for (const setting of settings) {
        const mine = counted(setting, kind);
        rows.push(
          `    ${kind}, ${setting}: main thread ${(mine.main / 1000).toFixed(1)}k (ratio ${(mine.main / off.main).toFixed(3)}), all threads ${(mine.all / 1000).toFixed(0)}k (ratio ${(mine.all / off.all).toFixed(3)})`,
        );
      }
    }
    rows.push(
      `  the ledger alone: ${(ledgerMicros() * 1000).toFixed(0)} ns per request (in process, ${LEDGER_LOOPS} requests)`,
    );
    const nodes = new Map<Setting, Node>();
    try {
      for (const setting of settings)
        nodes.set(setting, await startNode(dataOf(setting), join(work, 'shoal.log'), SETTINGS[setting], []));
      const runs = new Map<string, Array<{ rate: number; cpuUs: number }>>();
      for (let round = 0; round < RATE_ROUNDS; round++)
        for (const [setting, node] of nodes)
          for (const [kind, url] of Object.entries(targets(node, ids.registry, ids.tag, ids.blob)))
            runs.set(`${kind} ${setting}`, [
              ...(runs.get(`${kind} ${setting}`) ?? []),
              await underLoad(node, url),
            ]);
      rows.push(
        `  under load (16 connections, median of ${RATE_ROUNDS} alternating rounds of ${RATE_SECONDS} s):`,
      );
      for (const kind of ['blob', 'manifest'] as const)
        for (const setting of settings) {
          const mine = runs.get(`${kind} ${setting}`) ?? [];
          rows.push(
            `    ${kind}, ${setting}: ${median(mine.map((run) => run.rate)).toFixed(0)} req/s, ${median(mine.map((run) => run.cpuUs)).toFixed(0)} CPU-us/req`,
          );
        }
    } finally {
      await Promise.all([...nodes.values()].map(stopNode));
    }
    return rows;
  } finally {
    await removeDir(work);
  }
}
