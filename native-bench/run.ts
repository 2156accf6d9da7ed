import { join } from 'node:path';
import autocannon from 'autocannon';
import { cachedLayout, pushLayout } from '../test/harness/images.js';
import { DistributionRegistry } from '../test/harness/registry.js';
import { importLayout, ShoalProcess } from '../test/harness/shoal.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';
import { clientsBench } from './clients.js';
import { containerdPullBench } from './containerd-pull.js';
import { countingBench } from './counting.js';
import { datastoreBench } from './datastore.js';
import { heapLimitBench } from './heap-limit.js';
import { throughput } from './measure.js';
import { memoryBench } from './memory.js';
import { p2pBench } from './p2p.js';
import { peerAuthBench } from './peer-auth.js';
import { verifyBench } from './verify.js';

// Local-hit benchmarks: shoal serving from its embedded store against the CNCF distribution registry
// serving the same image from its filesystem, in the same run, on the same machine. Only ratios travel.

const MiB = 1 << 20;
const BLOB_MiB = Number(process.env.BENCH_BLOB_MIB ?? 256);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function requestRate(url: string): Promise<number> {
  const result = await autocannon({
    url,
    connections: 16,
    duration: 5,
    headers: {
      Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*',
    },
  });
  if (result.non2xx > 0) throw new Error(`${result.non2xx} failed requests to ${url}`);
  return result.requests.average;
}

async function main(): Promise<void> {
  const { dir: layout, result: image } = await cachedLayout(`bench-${BLOB_MiB}`, async (writer) => {
    const built = await writer.addImage({
      layers: [{ size: BLOB_MiB * MiB, seed: `bench-${BLOB_MiB}`, gzip: false }],
    });
    writer.tag(built.manifest, 'bench');
    return built;
  });
  const work = await shortTempDir('shoal-bench');
  const registry = new DistributionRegistry(join(work, 'registry'));
  let shoal: ShoalProcess | undefined;
  try {
    await registry.start();
    await pushLayout(layout, 'bench', registry.host, 'bench/app');
    await importLayout(join(work, 'data'), layout, registry.host, 'bench/app');
    shoal = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(work, 'data'),
      '--log-level',
      'error',
    ]);
    await shoal.start();
    const layer = image.layers[0];
    if (layer === undefined) throw new Error('bench image has no layer');
    const blobPath = `/v2/bench/app/blobs/${layer.digest}?ns=${registry.host}`;
    const manifestPath = `/v2/bench/app/manifests/bench?ns=${registry.host}`;
    const rows: string[] = [];
    for (const clients of [1, 4]) {
      const base = await throughput(`${registry.url}${blobPath}`, clients, layer.size, ROUNDS);
      const ours = await throughput(`${shoal.url}${blobPath}`, clients, layer.size, ROUNDS);
      rows.push(
        `blob ${BLOB_MiB} MiB, ${clients} client(s)  distribution ${base.toFixed(2)} GB/s  shoal ${ours.toFixed(2)} GB/s  ratio ${(ours / base).toFixed(2)}`,
      );
    }
    const baseRate = await requestRate(`${registry.url}${manifestPath}`);
    const ourRate = await requestRate(`${shoal.url}${manifestPath}`);
    rows.push(
      `manifest GET by tag, 16 conns  distribution ${baseRate.toFixed(0)} req/s  shoal ${ourRate.toFixed(0)} req/s  ratio ${(ourRate / baseRate).toFixed(2)}`,
    );
    console.log(
      ['local-hit benchmark (best of rounds; ratios are shoal / distribution):', ...rows].join('\n'),
    );
  } finally {
    await shoal?.stop();
    await registry.stop();
    await removeDir(work);
  }
}

// `npm run bench` runs everything; `npm run bench -- local`, `-- p2p`, `-- verify`, `-- auth`, `-- clients`,
// `-- memory`, `-- counting`, `-- pull` or `-- datastore` runs one part.
const only = process.argv[2];
if (only === undefined || only === 'local') await main();
if (only === undefined || only === 'p2p') console.log((await p2pBench()).join('\n'));
if (only === undefined || only === 'verify') console.log((await verifyBench()).join('\n'));
if (only === undefined || only === 'auth') console.log((await peerAuthBench()).join('\n'));
if (only === undefined || only === 'clients') console.log((await clientsBench()).join('\n'));
if (only === undefined || only === 'memory') console.log((await memoryBench()).join('\n'));
if (only === undefined || only === 'counting') console.log((await countingBench()).join('\n'));
if (only === undefined || only === 'pull') console.log((await containerdPullBench()).join('\n'));
if (only === undefined || only === 'datastore') console.log((await datastoreBench()).join('\n'));
if (only === undefined || only === 'heap') console.log((await heapLimitBench()).join('\n'));
