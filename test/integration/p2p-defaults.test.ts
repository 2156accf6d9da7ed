import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { registryFlags } from '../../src/main/config/commands.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import type { OciDescriptor } from '../harness/images.js';
import { freePort } from '../harness/process.js';
import { importLayout, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NS = '127.0.0.1:5000';
const REQUESTS = 200;
// The longest-lived cache in the path is the lookup cache's refresh age; the requests span 3.5 of them.
const SPAN_MS =
  Math.max(
    registryFlags.mirrorLookupRefresh.defaultValue,
    registryFlags.mirrorResolveTimeoutMax.defaultValue,
  ) * 3.5;

interface Miss {
  at: number;
  what: string;
  status: number;
}

/** Three shoal processes at the default flags; only node A's embedded store holds the image. */
async function startCluster(dir: string, image: SingleImageFixture): Promise<ShoalProcess[]> {
  await importLayout(join(dir, 'a'), image.dir, NS, 'app');
  const routerPorts = await Promise.all([freePort(), freePort(), freePort()]);
  const nodes = ['a', 'b', 'c'].map(
    (name, i) =>
      new ShoalProcess([
        '--store',
        'embedded',
        ...staticP2pArgs({
          dataDir: join(dir, name),
          routerPort: routerPorts[i] as number,
          bootstrapPort: routerPorts[0] as number,
        }),
      ]),
  );
  for (const node of nodes) await node.start();
  // No wait for the mesh or for advertising: /readyz is all a kubelet waits for.
  await Promise.all(nodes.map((node) => node.waitReady()));
  return nodes;
}

/** One GET of `layer` on `c` and one HEAD of the tag on `b`: what each answered other than 200. */
async function askOnce(
  b: ShoalProcess,
  c: ShoalProcess,
  image: SingleImageFixture,
  at: number,
): Promise<Miss[]> {
  const layer = image.image.layers[0] as OciDescriptor;
  const [blob, tag] = await Promise.all([
    fetch(`${c.url}/v2/app/blobs/${layer.digest}?ns=${NS}`),
    fetch(`${b.url}/v2/app/manifests/${image.tag}?ns=${NS}`, { method: 'HEAD' }),
  ]);
  const body = Buffer.from(await blob.arrayBuffer());
  const misses: Miss[] = [];
  if (blob.status !== 200) misses.push({ at, what: 'GET layer on C', status: blob.status });
  else assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, layer.digest);
  if (tag.status !== 200) misses.push({ at, what: 'HEAD tag on B', status: tag.status });
  return misses;
}

/** Asks REQUESTS times, evenly over SPAN_MS; every answer must be a 200, every body the layer's bytes. */
async function askThroughout(nodes: ShoalProcess[], image: SingleImageFixture): Promise<Miss[]> {
  const [, b, c] = nodes as [ShoalProcess, ShoalProcess, ShoalProcess];
  const misses: Miss[] = [];
  const started = Date.now();
  for (let i = 0; i < REQUESTS; i++) {
    misses.push(...(await askOnce(b, c, image, Date.now() - started)));
    const next = ((i + 1) * SPAN_MS) / REQUESTS - (Date.now() - started);
    if (next > 0) await sleep(next);
  }
  return misses;
}

/** Processes that spin for `ms` on every core they get; they end by themselves even if this test dies. */
function busyLoops(count: number, ms: number): ChildProcess[] {
  const code = `const end = Date.now() + ${ms}; while (Date.now() < end);`;
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', code], { stdio: 'ignore' }));
}

// Regression: at the default flags a node answered 404 for content a peer held: every 5 s, when its lookup
// cache expired and a fresh lookup missed the 20 ms resolve timeout, and on a busy machine, where that
// timeout sat at the median lookup time. Users run the defaults, so this test does too.
describe('P2P at the default flags: no miss for content a peer holds', { timeout: 300_000 }, () => {
  const dirs: string[] = [];
  const started: ShoalProcess[] = [];
  const loops: ChildProcess[] = [];

  after(async () => {
    for (const loop of loops) loop.kill('SIGKILL');
    await Promise.all(started.map((node) => node.stop()));
    await Promise.all(dirs.map((dir) => removeDir(dir)));
  });

  async function run(label: string, t: { diagnostic(message: string): void }): Promise<void> {
    const dir = await shortTempDir('shoal-p2p-defaults');
    dirs.push(dir);
    const image = await smallImage('p2p-defaults');
    const nodes = await startCluster(dir, image);
    started.push(...nodes);
    const misses = await askThroughout(nodes, image);
    const lookups = await Promise.all(
      nodes.map((node) => node.metric('shoal_router_lookups_total{result="found"}')),
    );
    t.diagnostic(
      `${label}: ${misses.length} misses in ${REQUESTS} GETs and ${REQUESTS} HEADs over ${SPAN_MS / 1000} s; ` +
        `DHT lookups that found a provider per node: ${lookups.join(' ')}`,
    );
    assert.deepEqual(misses, [], `${label}: every request found the peer`);
    await Promise.all(nodes.map((node) => node.stop()));
  }

  it('idle machine: 0 misses across 3 cache refreshes', async (t) => {
    await run('idle', t);
  });

  it('both cores pinned by busy loops, from before the nodes start: 0 misses', async (t) => {
    loops.push(...busyLoops(2, 120_000));
    try {
      await run('busy', t);
    } finally {
      for (const loop of loops) loop.kill('SIGKILL');
    }
  });
});
