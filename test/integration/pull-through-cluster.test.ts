import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OwnerElection } from '../../src/main/pullthrough/owner.js';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { clusterPullThroughArgs, ShoalProcess, waitForMesh } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

function download(url: string): Promise<{ status: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      res.on('data', (chunk: Buffer) => hash.update(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: `sha256:${hash.digest('hex')}` }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

const NODES = 4;

// Real processes: four empty nodes with P2P and --upstream-fallback in front of one distribution registry.
// Concurrent cold pulls of one blob on every node must reach upstream once: the owner (highest rendezvous
// score) fetches, the others stream from it. With the owner dead, the others fetch upstream themselves.
describe('pull-through across a cluster: one upstream fetch per digest', { timeout: 240_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  const nodes: ShoalProcess[] = [];
  const peerIds: string[] = [];
  const repository = 'cluster/app';
  const blobUrl = (node: ShoalProcess, blob: OciDescriptor) =>
    `${node.url}/v2/${repository}/blobs/${blob.digest}?ns=${registry.host}`;
  const upstreamGets = (blob: OciDescriptor) =>
    registry.output
      .split('\n')
      .filter(
        (line) => line.includes(`"GET /v2/${repository}/blobs/${blob.digest}`) && line.includes('" 200 '),
      ).length;

  before(async () => {
    dir = await shortTempDir('shoal-pt-cluster');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    const routerPorts = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    const idPorts = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    for (let i = 0; i < NODES; i++) {
      nodes.push(
        new ShoalProcess([
          ...clusterPullThroughArgs(dir, i, routerPorts, registry.host),
          '--http-bootstrap-addr',
          `127.0.0.1:${idPorts[i]}`,
        ]),
      );
    }
    await Promise.all(nodes.map((node) => node.start()));
    for (const port of idPorts) {
      await waitFor('node id', async () => (await fetch(`http://127.0.0.1:${port}/id`)).ok, 15_000);
      const text = await (await fetch(`http://127.0.0.1:${port}/id`)).text();
      peerIds.push(/\/p2p\/(\w+)/.exec(text)?.[1] ?? '');
    }
    // Owners are elected among the routing table: wait until every node knows every other one, so all
    // elect the same owner.
    await waitForMesh(nodes);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await registry?.stop();
    await removeDir(dir);
  });

  it('fetches a 64 MiB layer from upstream once for 8 concurrent cold pulls on 4 nodes', async () => {
    const layer = image.image.layers[2] as OciDescriptor;
    const pulls = nodes.flatMap((node) => [download(blobUrl(node, layer)), download(blobUrl(node, layer))]);
    for (const result of await Promise.all(pulls))
      assert.deepEqual([result.status, result.sha256], [200, layer.digest]);
    assert.equal(upstreamGets(layer), 1, 'one upstream GET for the whole cluster');
  });

  it('keeps asking an owner that answered 404 for one digest: the next one still leaves upstream once', async () => {
    const layer = image.image.layers[1] as OciDescriptor;
    const election = await OwnerElection.create();
    const owner = election.owner(layer.digest, peerIds) as string;
    // A digest upstream does not hold, owned by the same node: its owner answers 404.
    let absent = '';
    for (let i = 0; absent === ''; i++) {
      const candidate = `sha256:${createHash('sha256').update(`absent-${i}`).digest('hex')}`;
      if (election.owner(candidate, peerIds) === owner) absent = candidate;
    }
    const asker = nodes[(peerIds.indexOf(owner) + 1) % NODES] as ShoalProcess;
    const missing = await download(`${asker.url}/v2/${repository}/blobs/${absent}?ns=${registry.host}`);
    assert.equal(missing.status, 404);
    const pulls = nodes.map((node) => download(blobUrl(node, layer)));
    for (const result of await Promise.all(pulls))
      assert.deepEqual([result.status, result.sha256], [200, layer.digest]);
    assert.equal(upstreamGets(layer), 1, 'the node that got a 404 still went through the owner');
  });

  it('fetches from upstream itself when the owner of a digest is dead', async () => {
    const layer = image.image.layers[3] as OciDescriptor;
    const election = await OwnerElection.create();
    const owner = peerIds.indexOf(election.owner(layer.digest, peerIds) as string);
    assert.ok(owner >= 0);
    await (nodes[owner] as ShoalProcess).stop(0);
    const survivors = nodes.filter((_, i) => i !== owner);
    const results = await Promise.all(survivors.map((node) => download(blobUrl(node, layer))));
    for (const result of results) assert.deepEqual([result.status, result.sha256], [200, layer.digest]);
    assert.ok(upstreamGets(layer) >= 1, 'the survivors went upstream');
  });
});
