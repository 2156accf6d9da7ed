import type { Socket } from 'node:net';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { bigImage } from '../test/harness/fixtures.js';
import { readUsage } from '../test/harness/process-usage.js';
import { nonReadingRequest } from '../test/harness/readers.js';
import { importLayout, ShoalProcess } from '../test/harness/shoal.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';
import { oneRound } from './measure.js';

// Memory of one whole shoal process at its defaults, for the DaemonSet's requests and limits: RSS idle,
// then the peak (VmHWM) through a load run that holds every kind of buffer at once: 8 clients pulling a
// 256 MiB layer, 100 connections that asked for it and never read (parked buffers), and 16 connections of
// manifest requests. Run: npm run bench -- memory

const NON_READERS = Number(process.env.BENCH_MEMORY_NON_READERS ?? 100);
const CLIENTS = Number(process.env.BENCH_MEMORY_CLIENTS ?? 8);
const ROUNDS = Number(process.env.BENCH_MEMORY_ROUNDS ?? 3);

async function status(pid: number): Promise<{ rssMiB: number; peakMiB: number }> {
  const usage = await readUsage(pid);
  return { rssMiB: usage.rssMiB, peakMiB: usage.peakRssMiB };
}

export async function memoryBench(): Promise<string[]> {
  const image = await bigImage();
  const dir = await shortTempDir('shoal-memory-bench');
  const registry = 'bench.invalid';
  await importLayout(join(dir, 'data'), image.dir, registry, 'app');
  // Defaults throughout (stream buffers, parked bytes, verify workers): what a DaemonSet pod runs.
  const shoal = new ShoalProcess([
    '--store',
    'embedded',
    '--data-dir',
    join(dir, 'data'),
    '--log-level',
    'error',
  ]);
  const parked: Socket[] = [];
  try {
    await shoal.start();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const idle = await status(shoal.pid);
    const layer = image.image.layers.reduce((a, b) => (a.size >= b.size ? a : b));
    const path = `/v2/app/blobs/${layer.digest}?ns=${registry}`;
    for (let i = 0; i < NON_READERS; i++) parked.push(await nonReadingRequest(shoal.host, shoal.port, path));
    const manifests = autocannon({
      url: `${shoal.url}/v2/app/manifests/${image.tag}?ns=${registry}`,
      connections: 16,
      duration: 10,
      headers: {
        Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
      },
    });
    let best = 0;
    for (let round = 0; round < ROUNDS; round++)
      best = Math.max(best, await oneRound(`${shoal.url}${path}`, CLIENTS, layer.size));
    await manifests;
    const loaded = await status(shoal.pid);
    return [
      'memory of one shoal process at its defaults (embedded store):',
      `RSS idle ${idle.rssMiB.toFixed(0)} MiB`,
      `peak RSS (VmHWM) ${loaded.peakMiB.toFixed(0)} MiB through ${ROUNDS} rounds of ${CLIENTS} clients × ${(layer.size / 2 ** 20).toFixed(0)} MiB (best ${best.toFixed(2)} GB/s), ${NON_READERS} non-reading connections and 16 connections of manifest GETs`,
      `RSS after the load ${loaded.rssMiB.toFixed(0)} MiB`,
    ];
  } finally {
    for (const socket of parked) socket.destroy();
    await shoal.stop();
    await removeDir(dir);
  }
}
