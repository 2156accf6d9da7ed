import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Containerd } from '../harness/containerd.js';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { configureMirror, embeddedMember, importLayout, type ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

interface RequestLine {
  method: string;
  kind: string;
  digest?: string;
  requester: string;
  status: number;
}

/** The request lines a node logged (its info line per finished request). */
function requestLines(node: ShoalProcess): RequestLine[] {
  return node.output
    .split('\n')
    .filter((line) => line.includes('"msg":"request"'))
    .map((line) => JSON.parse(line) as RequestLine);
}

// What crosses the wire when containerd pulls through its node's shoal from a peer, all real: a CNCF
// registry holds the image, a peer shoal holds it too (embedded store), and a node's shoal holds nothing.
// containerd pulls through the node; both shoals log one line per request at the default level, and the
// lines are counted: one registry-port request per blob, and at most one HEAD and one GET per blob at
// the peer.
describe('e2e: requests on the wire for a containerd pull from a peer', { timeout: 300_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let containerd: Containerd;
  let peer: ShoalProcess;
  let node: ShoalProcess;
  const repository = 'wire/app';

  before(async () => {
    dir = await shortTempDir('shoal-wire');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    await importLayout(join(dir, 'peer'), image.dir, registry.host, repository);
    const [peerRouter, nodeRouter] = await Promise.all([freePort(), freePort()]);
    // The harness quiets nodes to warn; these run at the default level, whose request lines are counted.
    const info = ['--log-level', 'info'];
    const member = (name: string, routerPort: number, host: string) =>
      embeddedMember({ dataDir: join(dir, name), routerPort, bootstrapPort: peerRouter, host }, info);
    peer = member('peer', peerRouter, '127.0.0.1');
    node = member('node', nodeRouter, '127.0.0.2');
    await peer.start();
    await node.start();
    containerd = new Containerd(join(dir, 'ctrd'));
    await containerd.start();
    await configureMirror(containerd.hostsDir, registry.url, node.url);
    // The peer has announced what it holds: the node can find it (a pod starting after the node joined).
    await waitFor(
      'the image found through the peer',
      async () =>
        (await node.debugState()).routing?.tableSize === 1 &&
        ((await peer.debugState()).routing?.advertised.digest ?? 0) >= 6,
      60_000,
    );
  });

  after(async () => {
    await containerd?.stop();
    await Promise.all([peer?.stop(), node?.stop()]);
    await registry?.stop();
    await removeDir(dir);
  });

  it('one registry-port request per blob, and at most one HEAD and one GET per blob at the peer', async () => {
    const ref = `${registry.host}/${repository}@${image.image.manifest.digest}`;
    const logged = registry.output.length;
    await containerd.ctr(['content', 'fetch', '--plain-http', '--hosts-dir', containerd.hostsDir, ref]);
    const held = await containerd.contentDigests();
    const blobs = [image.image.config, ...image.image.layers].map((blob) => blob.digest);
    for (const digest of [image.image.manifest.digest, ...blobs]) assert.ok(held.has(digest), digest);
    const atNode = requestLines(node).filter((line) => line.requester === 'client');
    const atPeer = requestLines(peer).filter((line) => line.requester === 'member');
    for (const digest of blobs) {
      const asked = atNode.filter((line) => line.kind === 'blob' && line.digest === digest);
      assert.deepEqual(
        asked.map((line) => `${line.method} ${line.status}`),
        ['GET 200'],
        `${digest}: requests at the node's registry port`,
      );
      const methods = atPeer.filter((line) => line.digest === digest).map((line) => line.method);
      assert.ok(methods.filter((m) => m === 'HEAD').length <= 1, `${digest}: HEADs at the peer ${methods}`);
      assert.equal(methods.filter((m) => m === 'GET').length, 1, `${digest}: GETs at the peer ${methods}`);
    }
    // Nothing went to the registry: every byte came from the peer.
    const registryLog = registry.output.slice(logged);
    for (const digest of blobs) assert.ok(!registryLog.includes(digest), `${digest} asked of the registry`);
  });
});
