import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DebugState } from '../../src/main/debug/state.js';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { importLayout, pullThroughArgs, ShoalProcess, staticP2pArgs, waitForMesh } from '../harness/shoal.js';
import { ThrottledProxy } from '../harness/throttle.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/**
 * Every sample of a node's /metrics, by `name{labels}`, once no request is in flight: a client can hold its
 * whole body a moment before the server has closed the response that sent it.
 */
async function scrape(node: ShoalProcess): Promise<Map<string, number>> {
  let samples = new Map<string, number>();
  await waitFor('no request in flight', async () => {
    const text = await (await fetch(`http://${node.host}:${node.metricsPort}/metrics`)).text();
    samples = new Map();
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || line === '') continue;
      const space = line.lastIndexOf(' ');
      samples.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
    return samples.get('shoal_requests_in_flight') === 0;
  });
  return samples;
}

/** How far each sample moved between two scrapes (samples that did not move are left out). */
function moved(
  before: Map<string, number>,
  now: Map<string, number>,
  prefix: string,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of now) {
    if (!key.startsWith(prefix)) continue;
    const delta = value - (before.get(key) ?? 0);
    if (delta !== 0) out[key] = delta;
  }
  return out;
}

/** The dashboard k8s/ ships (the service-monitor overlay's ConfigMap). */
const DASHBOARD = fileURLToPath(
  new URL('../../../k8s/components/service-monitor/shoal-dashboard.json', import.meta.url),
);

const requests = (labels: Record<string, string>): string =>
  `shoal_requests_total{registry="${labels.registry}",kind="${labels.kind}",source="${labels.source}",result="${labels.result}",requester="${labels.requester ?? 'client'}"}`;

/** GETs `url` and reads the body to its end. */
async function get(url: string): Promise<{ status: number; bytes: number }> {
  const response = await fetch(url);
  return { status: response.status, bytes: (await response.arrayBuffer()).byteLength };
}

// Real processes: node A holds an image (embedded store), node B is its empty peer, and node C pulls through
// from a CNCF registry behind a throttling proxy (so concurrent requests meet one download under way). Each
// kind of request is made once, and the counters on /metrics must move by exactly what it was.
describe('request metrics: every request counted once, by source and result', { timeout: 180_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let slow: ThrottledProxy;
  let a: ShoalProcess;
  let b: ShoalProcess;
  let c: ShoalProcess;
  const repository = 'metrics/app';
  const started = Date.now() / 1000;

  before(async () => {
    dir = await shortTempDir('shoal-req-metrics');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    await importLayout(join(dir, 'a'), image.dir, registry.host, repository);
    // 1 MiB/s: the 1 MiB layer takes a second to come through and the 4 MiB one four, so requests made
    // together meet one download under way.
    slow = new ThrottledProxy({ host: '127.0.0.1', port: registry.port }, 1 << 20);
    await slow.start();
    const [routerA, routerB] = await Promise.all([freePort(), freePort()]);
    const mirrored = ['--mirrored-registries', `http://${registry.host}`];
    a = new ShoalProcess([
      '--store',
      'embedded',
      ...staticP2pArgs({ dataDir: join(dir, 'a'), routerPort: routerA, bootstrapPort: routerA }),
      ...mirrored,
    ]);
    b = new ShoalProcess([
      '--store',
      'embedded',
      ...staticP2pArgs({ dataDir: join(dir, 'b'), routerPort: routerB, bootstrapPort: routerA }),
      ...mirrored,
      // The default level: the harness quiets nodes to warn, and B's request lines are read below.
      '--log-level',
      'info',
    ]);
    c = new ShoalProcess(pullThroughArgs(join(dir, 'c'), slow.host));
    await Promise.all([a.start(), b.start(), c.start()]);
    await waitForMesh([a, b]);
    // B finds A's content once A has announced it.
    const layer = image.image.layers[0] as OciDescriptor;
    await waitFor(
      'A’s content found from B',
      async () =>
        (
          await fetch(`${b.url}/v2/${repository}/blobs/${layer.digest}?ns=${registry.host}`, {
            method: 'HEAD',
          })
        ).status === 200,
      60_000,
    );
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await slow?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('a local hit: a manifest by tag is one hit, a blob one hit', async () => {
    const layer = image.image.layers[1] as OciDescriptor;
    const before = await scrape(a);
    const manifest = await get(`${a.url}/v2/${repository}/manifests/${image.tag}?ns=${registry.host}`);
    const blob = await get(`${a.url}/v2/${repository}/blobs/${layer.digest}?ns=${registry.host}`);
    assert.deepEqual([manifest.status, blob.status, blob.bytes], [200, 200, layer.size]);
    const now = await scrape(a);
    const host = registry.host;
    assert.deepEqual(moved(before, now, 'shoal_requests_total'), {
      [requests({ registry: host, kind: 'manifest', source: 'local', result: 'hit' })]: 1,
      [requests({ registry: host, kind: 'blob', source: 'local', result: 'hit' })]: 1,
    });
    assert.deepEqual(moved(before, now, 'shoal_served_bytes_total'), {
      'shoal_served_bytes_total{source="local",requester="client"}': manifest.bytes + layer.size,
    });
    assert.ok((now.get('shoal_last_success_timestamp_seconds{source="local"}') ?? 0) >= Math.floor(started));
  });

  it('a peer hit: B serves A’s layer, and A counts what B asked of it as a member', async () => {
    const layer = image.image.layers[3] as OciDescriptor;
    const [beforeA, beforeB] = await Promise.all([scrape(a), scrape(b)]);
    const blob = await get(`${b.url}/v2/${repository}/blobs/${layer.digest}?ns=${registry.host}`);
    assert.deepEqual([blob.status, blob.bytes], [200, layer.size]);
    const [nowA, nowB] = await Promise.all([scrape(a), scrape(b)]);
    const host = registry.host;
    assert.deepEqual(moved(beforeB, nowB, 'shoal_requests_total'), {
      [requests({ registry: host, kind: 'blob', source: 'peer', result: 'hit' })]: 1,
    });
    assert.deepEqual(moved(beforeB, nowB, 'shoal_served_bytes_total'), {
      'shoal_served_bytes_total{source="peer",requester="client"}': layer.size,
    });
    // One pass: B asked A at most once to describe the layer and once for its bytes.
    const asked = moved(beforeA, nowA, 'shoal_requests_total');
    assert.deepEqual(Object.keys(asked), [
      requests({ registry: host, kind: 'blob', source: 'local', result: 'hit', requester: 'member' }),
    ]);
    assert.ok((Object.values(asked)[0] ?? 0) <= 2, `A was asked ${Object.values(asked)[0]} times`);
    assert.equal(
      (nowB.get('shoal_peer_request_duration_seconds_count{method="GET"}') ?? 0) -
        (beforeB.get('shoal_peer_request_duration_seconds_count{method="GET"}') ?? 0),
      1,
    );
    assert.ok((nowB.get('shoal_last_success_timestamp_seconds{source="peer"}') ?? 0) >= Math.floor(started));
    // One info line per request, naming the peer that sent the bytes.
    const peerA = (
      (await (await fetch(`http://${a.host}:${a.metricsPort}/debug/state`)).json()) as DebugState
    ).node.peerId;
    const lines = b.output
      .split('\n')
      .filter((line) => line.includes('"msg":"request"') && line.includes(layer.digest))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      lines.map(
        ({ method, registry: r, repository: repo, kind, digest, source, status, result, bytes, peer }) => ({
          method,
          registry: r,
          repository: repo,
          kind,
          digest,
          source,
          status,
          result,
          bytes,
          peer,
        }),
      ),
      [
        {
          method: 'GET',
          registry: host,
          repository,
          kind: 'blob',
          digest: layer.digest,
          source: 'peer',
          status: 200,
          result: 'hit',
          bytes: layer.size,
          peer: peerA,
        },
      ],
    );
    assert.ok(lines.every((line) => typeof line.ms === 'number'));
  });

  it('a miss, a filtered request and a TLS handshake: nothing served, each counted as what it was', async () => {
    const before = await scrape(b);
    const absent = `sha256:${'0'.repeat(64)}`;
    const miss = await get(`${b.url}/v2/${repository}/blobs/${absent}?ns=${registry.host}`);
    const filtered = await get(`${b.url}/v2/${repository}/blobs/${absent}?ns=elsewhere.example`);
    assert.deepEqual([miss.status, filtered.status], [404, 404]);
    // What podman and skopeo send first to a plain-http port: uWS's parser answers it before shoal sees a
    // request, so it is not counted (README, *The registry port*).
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(b.port, b.host, () =>
        socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])),
      );
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 505 /);
    assert.deepEqual(moved(before, await scrape(b), 'shoal_requests_total'), {
      [requests({ registry: registry.host, kind: 'blob', source: 'none', result: 'miss' })]: 1,
      [requests({ registry: 'other', kind: 'blob', source: 'none', result: 'filtered' })]: 1,
    });
  });

  it('a pull-through fetch: one upstream GET and its bytes, one request, nothing coalesced', async () => {
    const layer = image.image.layers[1] as OciDescriptor;
    const before = await scrape(c);
    const blob = await get(`${c.url}/v2/${repository}/blobs/${layer.digest}?ns=${slow.host}`);
    assert.deepEqual([blob.status, blob.bytes], [200, layer.size]);
    const now = await scrape(c);
    const host = slow.host;
    assert.deepEqual(moved(before, now, 'shoal_requests_total'), {
      [requests({ registry: host, kind: 'blob', source: 'upstream', result: 'hit' })]: 1,
    });
    assert.deepEqual(moved(before, now, 'shoal_upstream_requests_total'), {
      [`shoal_upstream_requests_total{registry="${host}",status="200"}`]: 1,
    });
    assert.deepEqual(moved(before, now, 'shoal_pullthrough_downloads_total'), {
      'shoal_pullthrough_downloads_total{from="upstream"}': 1,
    });
    assert.deepEqual(moved(before, now, 'shoal_pullthrough_coalesced_total'), {});
    await waitFor('the download’s bytes counted', async () => {
      const bytes = await scrape(c);
      return (
        (bytes.get(`shoal_upstream_bytes_total{registry="${host}"}`) ?? 0) -
          (before.get(`shoal_upstream_bytes_total{registry="${host}"}`) ?? 0) ===
        layer.size
      );
    });
  });

  it('coalesced: three concurrent cold GETs share one upstream download', async () => {
    const layer = image.image.layers[3] as OciDescriptor;
    const before = await scrape(c);
    const blobs = await Promise.all(
      [0, 1, 2].map(() => get(`${c.url}/v2/${repository}/blobs/${layer.digest}?ns=${slow.host}`)),
    );
    for (const blob of blobs) assert.deepEqual([blob.status, blob.bytes], [200, layer.size]);
    const now = await scrape(c);
    assert.deepEqual(moved(before, now, 'shoal_requests_total'), {
      [requests({ registry: slow.host, kind: 'blob', source: 'upstream', result: 'hit' })]: 3,
    });
    assert.deepEqual(moved(before, now, 'shoal_pullthrough_downloads_total'), {
      'shoal_pullthrough_downloads_total{from="upstream"}': 1,
    });
    assert.deepEqual(moved(before, now, 'shoal_pullthrough_coalesced_total'), {
      shoal_pullthrough_coalesced_total: 2,
    });
    assert.deepEqual(moved(before, now, 'shoal_upstream_requests_total'), {
      [`shoal_upstream_requests_total{registry="${slow.host}",status="200"}`]: 1,
    });
  });

  it('names in every Grafana dashboard query only metrics these nodes exposed, with samples', async () => {
    const exposed = new Set<string>();
    for (const node of [a, b, c])
      for (const sample of (await scrape(node)).keys()) exposed.add(sample.replace(/\{.*$/, ''));
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as unknown;
    const queries: string[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (typeof value === 'object' && value !== null)
        for (const [key, inner] of Object.entries(value)) {
          if ((key === 'expr' || key === 'definition') && typeof inner === 'string') queries.push(inner);
          else walk(inner);
        }
    };
    walk(dashboard);
    assert.ok(queries.length >= 20, `only ${queries.length} queries`);
    for (const query of queries) {
      const names = query.match(/\b(shoal|process|nodejs)_[a-z0-9_]+/g) ?? [];
      assert.ok(names.length > 0, `${query} names no metric`);
      for (const name of names) assert.ok(exposed.has(name), `${name} (in ${query}) was never on /metrics`);
    }
  });
});
