import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Containerd } from '../harness/containerd.js';
import { type SingleImageFixture, threeLayerImage } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { configureMirror, containerdStoreArgs, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NODES = 8;

/** One node of the test cluster: a real containerd with its own shoal in front of it. */
interface Node {
  containerd: Containerd;
  shoal: ShoalProcess;
}

// All real: eight nodes, each a containerd with its own shoal (containerd store, P2P, --upstream-fallback)
// in front of one distribution registry. Every node pulls the same uncached 3-layer, 256 MiB image at the
// same moment: the registry must serve each blob once, and every containerd must end with the same image.
// Then the registry stops, and a ninth node that joins afterwards pulls every earlier image by tag and by
// digest from the others.
describe('e2e: a cold pull on 8 containerd nodes at once reaches upstream once per blob', {
  timeout: 900_000,
}, () => {
  let dir: string;
  let registry: DistributionRegistry;
  let together: SingleImageFixture;
  let alone: SingleImageFixture;
  const nodes: Node[] = [];
  const containerds: Containerd[] = [];
  let routerPorts: number[] = [];
  /** How long after all 8 were ready every routing table held the other 7. */
  let meshMs = 0;
  const ref = (repo: string, image: SingleImageFixture) => `${registry.host}/${repo}:${image.tag}`;
  const byDigest = (repo: string, image: SingleImageFixture) =>
    `${registry.host}/${repo}@${image.image.manifest.digest}`;
  const blobsOf = (image: SingleImageFixture): OciDescriptor[] => [image.image.config, ...image.image.layers];
  /** Successful upstream GETs of `blob`, from the registry's access log. */
  const upstreamGets = (repo: string, blob: OciDescriptor) =>
    registry.output
      .split('\n')
      .filter((line) => line.includes(`"GET /v2/${repo}/blobs/${blob.digest}`) && line.includes('" 200 '))
      .length;

  async function startNode(i: number): Promise<Node> {
    const containerd = new Containerd(join(dir, `c${i}`));
    // Stopped in after() even when its shoal fails to start, or the test process never exits.
    containerds.push(containerd);
    await containerd.start();
    const shoal = new ShoalProcess([
      ...containerdStoreArgs(containerd),
      ...staticP2pArgs({
        dataDir: join(dir, `s${i}`),
        routerPort: routerPorts[i] as number,
        bootstrapPort: routerPorts[0] as number,
      }),
      '--upstream-fallback',
      '--insecure-registries',
      registry.host,
      '--mirrored-registries',
      `http://${registry.host}`,
      // Info, not the harness's warn: where each download came from and which peers went, should a blob
      // leave upstream twice (printed below only then).
      '--log-level',
      'info',
    ]);
    await shoal.start();
    await configureMirror(containerd.hostsDir, registry.url, shoal.url);
    return { containerd, shoal };
  }

  before(async () => {
    dir = await shortTempDir('shoal-cold');
    [together, alone] = await Promise.all([threeLayerImage('cold-together'), threeLayerImage('cold-alone')]);
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(together.dir, together.tag, registry.host, 'cold/together');
    await pushLayout(alone.dir, alone.tag, registry.host, 'cold/alone');
    routerPorts = await Promise.all(Array.from({ length: NODES + 1 }, () => freePort()));
    for (let i = 0; i < NODES; i++) nodes.push(await startNode(i));
    // Only what a kubelet waits for: every node ready. A joining node meets every other as it joins, so
    // the members every owner election starts from agree within moments (kad-dht pings a new contact
    // before it enters a table), far sooner than the next --router-refresh-interval (30 s).
    await Promise.all(nodes.map(({ shoal }) => shoal.waitReady(120_000)));
    meshMs = await allKnowEachOther(nodes, NODES - 1);
  });

  /**
   * Waits (10 s at most, a third of the refresh interval) until every node's table holds `count` members;
   * resolves with how long that took.
   */
  async function allKnowEachOther(of: Node[], count: number): Promise<number> {
    const started = Date.now();
    let members: number[] = [];
    await waitFor(
      `every node knows the other ${count}`,
      async () => {
        members = await Promise.all(of.map(({ shoal }) => shoal.metric('shoal_router_members')));
        return members.every((each) => each === count);
      },
      10_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; members per node: ${members.join(' ')}`);
    });
    return Date.now() - started;
  }

  after(async () => {
    await Promise.all(nodes.map(({ shoal }) => shoal.stop()));
    await Promise.all([...containerds.map((containerd) => containerd.stop()), registry?.stop()]);
    await removeDir(dir);
  });

  it('all 8 pull at once: each blob leaves the registry once, every containerd has the image', async (t) => {
    // The baseline: one node pulls another uncached image of the same shape alone.
    const soloStarted = performance.now();
    await (nodes[0] as Node).containerd.pull(ref('cold/alone', alone));
    const solo = performance.now() - soloStarted;
    t.diagnostic(`every node knew the other ${NODES - 1} ${meshMs} ms after all were ready`);

    const started = performance.now();
    const finished: number[] = [];
    await Promise.all(
      nodes.map(async ({ containerd }) => {
        await containerd.pull(ref('cold/together', together));
        finished.push(performance.now() - started);
      }),
    );
    const all = performance.now() - started;
    t.diagnostic(
      `one node alone: ${(solo / 1000).toFixed(1)} s; all ${NODES} at once: ${(all / 1000).toFixed(1)} s ` +
        `(×${(all / solo).toFixed(2)} the time for ×${NODES} the pulls); first node done at ` +
        `${(Math.min(...finished) / 1000).toFixed(1)} s`,
    );

    // Warnings say why a node went upstream itself (an owner that failed or was too slow), if one did.
    for (const [i, { shoal }] of nodes.entries()) {
      for (const line of shoal.output
        .split('\n')
        .filter((l) => /"level":(40|50)/.test(l))
        .slice(0, 5))
        t.diagnostic(`node ${i}: ${line.slice(0, 400)}`);
    }
    // Who fetched a blob more than once: shoal (its user agent) or a containerd that fell back on its own.
    for (const blob of blobsOf(together)) {
      if (upstreamGets('cold/together', blob) === 1) continue;
      for (const line of registry.output
        .split('\n')
        .filter((l) => l.includes(blob.digest) && l.includes('"GET ')))
        t.diagnostic(`upstream: ${line.slice(0, 400)}`);
      // Where each download came from, and which peers a node saw go (whom each node elected, too, with
      // SHOAL_TEST_LOG_LEVEL=debug).
      for (const [i, { shoal }] of nodes.entries()) {
        for (const line of shoal.output.split('\n')) {
          if (
            (line.includes(blob.digest) && /owner|pulling through|failed/.test(line)) ||
            /peer is gone|joined the cluster/.test(line)
          )
            t.diagnostic(`node ${i}: ${line.slice(0, 600)}`);
        }
      }
    }
    for (const blob of blobsOf(together)) {
      assert.equal(
        upstreamGets('cold/together', blob),
        1,
        `${blob.digest} (${blob.size} bytes) left upstream once`,
      );
    }
    for (const [i, { containerd }] of nodes.entries()) {
      const images = await containerd.images();
      assert.equal(images.get(ref('cold/together', together)), together.image.manifest.digest, `node ${i}`);
      const content = await containerd.contentDigests();
      for (const blob of [together.image.manifest, ...blobsOf(together)])
        assert.ok(content.has(blob.digest), `node ${i} lacks ${blob.digest}`);
    }
  });

  it('with the registry gone, a node that joins later pulls every earlier image by tag and by digest', async (t) => {
    await registry.stop();
    const late = await startNode(NODES);
    // Ready is all the late node waits for: its first requests, by tag and by digest, must find the
    // content the others hold.
    await late.shoal.waitReady();
    nodes.push(late);
    const members = await Promise.all(nodes.map(({ shoal }) => shoal.metric('shoal_router_members')));
    t.diagnostic(`routing-table members per node once the late node was ready: ${members.join(' ')}`);
    // The others learn of the late node as it joins, not at their next --router-refresh-interval (30 s).
    t.diagnostic(
      `every node knew the late node ${await allKnowEachOther(nodes, NODES)} ms after it was ready`,
    );
    const started = performance.now();
    // Each image once by tag and once by digest; whichever comes first finds nothing local.
    await late.containerd.pull(ref('cold/together', together));
    await late.containerd.pull(byDigest('cold/alone', alone));
    await late.containerd.pull(byDigest('cold/together', together));
    await late.containerd.pull(ref('cold/alone', alone));
    t.diagnostic(
      `the late node pulled both images with the registry down in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    const images = await late.containerd.images();
    assert.equal(images.get(ref('cold/together', together)), together.image.manifest.digest);
    assert.equal(images.get(ref('cold/alone', alone)), alone.image.manifest.digest);
    assert.equal(images.get(byDigest('cold/alone', alone)), alone.image.manifest.digest);
    const content = await late.containerd.contentDigests();
    for (const blob of [...blobsOf(together), ...blobsOf(alone)])
      assert.ok(content.has(blob.digest), `the late node lacks ${blob.digest}`);
  });
});
