import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Containerd } from '../harness/containerd.js';
import {
  bigImage,
  type MultiArchFixture,
  multiArchImage,
  type SingleImageFixture,
} from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { bytesSentFrom, freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { configureMirror, containerdStoreArgs, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// All real: three nodes, each a containerd with its own shoal (containerd store, static P2P bootstrap).
// Node 1 pulls from a distribution registry; the registry stops; nodes 2 and 3 pull through their own
// shoal, which finds node 1 in the DHT and streams from it.
describe('e2e: three containerd nodes pull from each other through shoal', { timeout: 900_000 }, () => {
  let dir: string;
  let registry: DistributionRegistry;
  const containerds: Containerd[] = [];
  const shoals: ShoalProcess[] = [];
  let big: SingleImageFixture;
  let multi: MultiArchFixture;
  const ref = (repo: string, tag: string): string => `${registry.host}/${repo}:${tag}`;

  before(async () => {
    dir = await shortTempDir('shoal-p2p-e2e');
    [big, multi] = await Promise.all([bigImage(), multiArchImage()]);
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(big.dir, big.tag, registry.host, 'p2p/big');
    await pushLayout(multi.dir, multi.tag, registry.host, 'p2p/multi');
    const routerPorts = await Promise.all([freePort(), freePort(), freePort()]);
    for (let i = 0; i < 3; i++) {
      const containerd = new Containerd(join(dir, `n${i + 1}`));
      await containerd.start();
      containerds.push(containerd);
      shoals.push(
        new ShoalProcess([
          ...containerdStoreArgs(containerd),
          ...staticP2pArgs({
            dataDir: join(dir, `s${i + 1}`),
            routerPort: routerPorts[i] as number,
            bootstrapPort: routerPorts[0] as number,
          }),
          // 64 MiB/s to peers: a 256 MiB layer takes seconds, so a node can be killed in the middle of it.
          '--peer-upload-rate',
          String(64 << 20),
        ]),
      );
    }
    await Promise.all(shoals.map((shoal) => shoal.start()));
    for (const [i, containerd] of containerds.entries()) {
      await configureMirror(containerd.hostsDir, registry.url, (shoals[i] as ShoalProcess).url);
    }
  });

  after(async () => {
    await Promise.all(shoals.map((shoal) => shoal.stop()));
    await Promise.all([...containerds.map((containerd) => containerd.stop()), registry?.stop()]);
    await removeDir(dir);
  });

  it('node 1 pulls from upstream and its content becomes discoverable from node 3', async (t) => {
    const node1 = containerds[0] as Containerd;
    // Node 1's own shoal has nothing yet and no peer does either, so this pull falls back to upstream.
    await node1.pull(ref('p2p/big', big.tag));
    await node1.pull(ref('p2p/multi', multi.tag));
    const pulled = Date.now();
    const shoal3 = shoals[2] as ShoalProcess;
    await waitFor(
      'content discoverable from node 3',
      async () => {
        const tag = await fetch(`${shoal3.url}/v2/p2p/big/manifests/${big.tag}?ns=${registry.host}`, {
          method: 'HEAD',
        });
        const layer = await fetch(
          `${shoal3.url}/v2/p2p/big/blobs/${big.image.layers[0]?.digest}?ns=${registry.host}`,
          {
            method: 'HEAD',
          },
        );
        return tag.status === 200 && layer.status === 200;
      },
      60_000,
    );
    t.diagnostic(
      `time from the end of node 1's pull to its content being discoverable from node 3: ${Date.now() - pulled} ms`,
    );
  });

  it('with the registry gone, node 2 pulls both images by tag from node 1', async (t) => {
    await registry.stop();
    const node2 = containerds[1] as Containerd;
    const started = Date.now();
    await node2.pull(ref('p2p/big', big.tag));
    t.diagnostic(`node 2 pulled the 256 MiB image through P2P in ${Date.now() - started} ms`);
    await node2.pull(ref('p2p/multi', multi.tag));
    const images = await node2.images();
    assert.equal(images.get(ref('p2p/big', big.tag)), big.image.manifest.digest);
    assert.equal(images.get(ref('p2p/multi', multi.tag)), multi.index.digest);
    const content = await node2.contentDigests();
    for (const blob of [big.image.config, ...big.image.layers])
      assert.ok(content.has(blob.digest), blob.digest);
  });

  it('node 3 pulls both images by digest; the node streaming the 256 MiB layer is killed mid-way', async (t) => {
    const node3 = containerds[2] as Containerd;
    const bigByDigest = `${registry.host}/p2p/big@${big.image.manifest.digest}`;
    const multiByDigest = `${registry.host}/p2p/multi@${multi.index.digest}`;
    await node3.pull(multiByDigest);
    const holders = [shoals[0], shoals[1]] as ShoalProcess[];
    const before = await Promise.all(holders.map((shoal) => bytesSentFrom(shoal.port)));
    const pull = node3.pull(bigByDigest);
    let serving = -1;
    let sent = 0;
    await waitFor(
      'a node streaming the big layer to node 3',
      async () => {
        const now = await Promise.all(holders.map((shoal) => bytesSentFrom(shoal.port)));
        serving = now.findIndex((bytes, i) => bytes - (before[i] ?? 0) > 32 << 20);
        sent = serving === -1 ? 0 : (now[serving] ?? 0) - (before[serving] ?? 0);
        return serving !== -1;
      },
      60_000,
    );
    await (holders[serving] as ShoalProcess).stop(0);
    t.diagnostic(
      `killed node ${serving + 1} after it had sent ${sent >> 20} MiB; node ${2 - serving} must finish`,
    );
    assert.ok(sent < (big.image.layers[0]?.size ?? 0), 'the kill came before the layer was complete');
    await pull;
    const content = await node3.contentDigests();
    for (const blob of [big.image.manifest, big.image.config, ...big.image.layers, multi.index]) {
      assert.ok(content.has(blob.digest), `node 3 lacks ${blob.digest}`);
    }
  });
});
