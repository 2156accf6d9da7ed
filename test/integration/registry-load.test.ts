import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import autocannon from 'autocannon';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import type { OciDescriptor } from '../harness/images.js';
import { readUsage } from '../harness/process-usage.js';
import { importLayout, ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NS = 'registry.example:5000';
const FULL = process.env.SHOAL_LOAD === 'full';
/** The load: 500 connections for 60 s (`npm run test:load`); `npm test` runs a 5 s slice of it. */
const CONNECTIONS = FULL ? 500 : 100;
const SECONDS = FULL ? 60 : 5;
/** Peak RSS allowed: the stream buffer pool (64 MiB by default) and V8's heap, with room to spare. */
const PEAK_RSS_LIMIT_MIB = 400;

interface Mix {
  name: string;
  /** Share of the connections. */
  share: number;
  path: string;
  headers: Record<string, string>;
  /** The only status this kind may get. */
  status: number;
}

// A node under many concurrent clients, at its defaults (the request line logged at info, as shipped):
// manifest hits by tag, range hits on a layer, and misses, each on its own connections so every answer is
// checked against the one status it may have. No connection error, timeout or other status is allowed.
describe(`load: ${CONNECTIONS} connections for ${SECONDS} s of manifest hits, range hits and misses`, {
  timeout: (SECONDS + 90) * 1000,
}, () => {
  let dir: string;
  let image: SingleImageFixture;
  let node: ShoalProcess;

  before(async () => {
    dir = await shortTempDir('shoal-load');
    image = await smallImage('load');
    await importLayout(join(dir, 'data'), image.dir, NS, 'load/app');
    // Each request's line at info, as the product logs by default (the harness otherwise keeps to warn).
    process.env.SHOAL_TEST_LOG_LEVEL = 'info';
    node = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'data')]);
    await node.start();
  });

  after(async () => {
    await node?.stop();
    await removeDir(dir);
  });

  it('answers every request with its one status; reports p99 and peak RSS, and the peak is bounded', async (t) => {
    const layer = image.image.layers[0] as OciDescriptor;
    const mix: Mix[] = [
      {
        name: 'manifest hit',
        share: 0.4,
        path: `/v2/load/app/manifests/${image.tag}?ns=${NS}`,
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        status: 200,
      },
      {
        name: 'blob range hit',
        share: 0.4,
        path: `/v2/load/app/blobs/${layer.digest}?ns=${NS}`,
        headers: { range: 'bytes=1024-17407' },
        status: 206,
      },
      {
        name: 'miss',
        share: 0.2,
        path: `/v2/load/app/blobs/sha256:${'0'.repeat(64)}?ns=${NS}`,
        headers: {},
        status: 404,
      },
    ];
    const before = await readUsage(node.pid);
    const results = await Promise.all(
      mix.map((kind) =>
        autocannon({
          url: `${node.url}${kind.path}`,
          headers: kind.headers,
          connections: Math.round(CONNECTIONS * kind.share),
          duration: SECONDS,
          timeout: 10,
        }),
      ),
    );
    const peak = await readUsage(node.pid);
    for (const [i, result] of results.entries()) {
      const kind = mix[i] as Mix;
      const statuses = Object.fromEntries(
        Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, count]),
      );
      t.diagnostic(
        `${kind.name}: ${result.requests.total} requests, ${Math.round(result.requests.average)}/s; latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms; statuses ${JSON.stringify(statuses)}; errors ${result.errors}, timeouts ${result.timeouts}`,
      );
      assert.equal(result.errors, 0, `${kind.name}: connection errors`);
      assert.equal(result.timeouts, 0, `${kind.name}: timeouts`);
      assert.deepEqual(Object.keys(statuses), [String(kind.status)], `${kind.name}: statuses`);
      assert.ok(result.requests.total > 0, `${kind.name}: some requests were answered`);
    }
    const all = results.reduce((sum, r) => sum + r.requests.total, 0);
    t.diagnostic(
      `all: ${all} requests in ${SECONDS} s on ${CONNECTIONS} connections; shoal peak RSS ${peak.peakRssMiB.toFixed(0)} MiB (${before.rssMiB.toFixed(0)} MiB before), CPU ${(peak.cpuSeconds - before.cpuSeconds).toFixed(1)} s`,
    );
    assert.ok(peak.peakRssMiB < PEAK_RSS_LIMIT_MIB, `peak RSS ${peak.peakRssMiB.toFixed(0)} MiB`);
    assert.equal((await fetch(`${node.url}/livez`)).status, 200);
  });
});
