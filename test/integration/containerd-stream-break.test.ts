import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Containerd } from '../harness/containerd.js';
import { endTogether } from '../harness/end-together.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { containerdStoreArgs, type ShoalProcess, startWithPeer } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/**
 * containerd's socket as shoal sees it, through a relay the test can break: every connection is cut and
 * new ones are refused until it is mended, while containerd itself runs on (and the test changes it).
 */
class BreakableSocket {
  readonly path: string;
  readonly #server: Server;
  readonly #open = new Set<Socket>();
  #broken = false;

  constructor(path: string, target: string) {
    this.path = path;
    this.#server = createServer((client) => {
      if (this.#broken) {
        client.destroy();
        return;
      }
      const upstream = connect(target);
      endTogether(client, upstream);
      client.pipe(upstream).pipe(client);
      this.#open.add(client);
      client.once('close', () => this.#open.delete(client));
    });
  }

  async start(): Promise<void> {
    await rm(this.path, { force: true });
    await new Promise<void>((resolve) => this.#server.listen(this.path, resolve));
  }

  break(): void {
    this.#broken = true;
    for (const client of this.#open) client.destroy();
  }

  mend(): void {
    this.#broken = false;
  }

  stop(): Promise<void> {
    this.break();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

// containerd's event stream breaks (a restart, a proxy or a stuck socket) and content is deleted while it
// is down: no event of that deletion ever reaches shoal. Once the stream is back, shoal must subscribe
// again and look at what containerd holds, and withdraw what is gone: a stale record would send its peers
// to a node that answers 404. shoal never exits meanwhile. Every flag at its default.
describe('containerd event stream broken while content is deleted', { timeout: 120_000 }, () => {
  let dir: string;
  let registry: DistributionRegistry;
  let containerd: Containerd;
  let relay: BreakableSocket;
  let shoal: ShoalProcess;
  let peer: ShoalProcess;
  let kept: SingleImageFixture;
  let deleted: SingleImageFixture;
  const layerOf = (image: SingleImageFixture): OciDescriptor => image.image.layers[0] as OciDescriptor;
  /** The peer's answer for a layer: it holds nothing, so a 200 comes from shoal's advertisement. */
  const peerStatus = async (image: SingleImageFixture): Promise<number> => {
    const url = `${peer.url}/v2/sb/app/blobs/${layerOf(image).digest}?ns=${registry.host}`;
    return (await fetch(url, { method: 'HEAD' })).status;
  };

  before(async () => {
    dir = await shortTempDir('shoal-stream');
    [kept, deleted] = await Promise.all([smallImage('stream-kept'), smallImage('stream-deleted')]);
    registry = new DistributionRegistry(join(dir, 'registry'));
    containerd = new Containerd(join(dir, 'c'));
    await Promise.all([registry.start(), containerd.start()]);
    for (const [image, name] of [
      [kept, 'sb/kept'],
      [deleted, 'sb/deleted'],
    ] as const) {
      await pushLayout(image.dir, image.tag, registry.host, name);
      await containerd.pull(`${registry.host}/${name}:${image.tag}`, ['--plain-http']);
    }
    relay = new BreakableSocket(join(dir, 'relay.sock'), containerd.socket);
    await relay.start();
    ({ shoal, peer } = await startWithPeer(
      dir,
      containerdStoreArgs({
        socket: relay.path,
        namespace: containerd.namespace,
        contentPath: containerd.contentPath,
      }),
    ));
    await waitFor('the peer finds both images', async () => (await peerStatus(deleted)) === 200, 30_000);
    assert.equal(await peerStatus(kept), 200);
  });

  after(async () => {
    await shoal?.stop();
    await peer?.stop();
    await relay?.stop();
    await containerd?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('subscribes again once the stream is back, withdraws what was deleted meanwhile, and never exits', async (t) => {
    const advertised = async (): Promise<number> =>
      (await shoal.debugState()).routing?.advertised.digest ?? 0;
    const withdrawn = (): Promise<number> =>
      shoal.metric('shoal_advertise_keys_total{op="withdraw",result="ok"}');
    await waitFor('every digest advertised', async () => (await advertised()) >= 6, 15_000);
    const before = { advertised: await advertised(), withdrawn: await withdrawn() };
    relay.break();
    // Deleted while shoal hears nothing: the image, then its content (what containerd's GC does later).
    await containerd.ctr(['images', 'rm', `${registry.host}/sb/deleted:${deleted.tag}`]);
    for (const blob of [deleted.image.manifest, deleted.image.config, layerOf(deleted)])
      await containerd.ctr(['content', 'rm', blob.digest]).catch(() => undefined);
    assert.ok(!(await containerd.ctr(['content', 'ls', '-q'])).includes(layerOf(deleted).digest));
    // Down for a while: shoal retries, answers, and stays up.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.ok(shoal.running, 'shoal is still running with the stream broken');
    relay.mend();
    const mended = Date.now();
    // The manifest, config and layer of the deleted image (and its tag) are withdrawn; nothing else is.
    await waitFor(
      'the deleted content is withdrawn',
      async () => (await advertised()) === before.advertised - 3,
      30_000,
    );
    t.diagnostic(`withdrawn ${Date.now() - mended} ms after the stream was back`);
    assert.equal(await withdrawn(), before.withdrawn + 4, 'three digests and one tag withdrawn');
    assert.equal(await peerStatus(deleted), 404);
    assert.equal(await peerStatus(kept), 200, 'what containerd still holds stays advertised');
    const served = await fetch(`${shoal.url}/v2/sb/kept/blobs/${layerOf(kept).digest}?ns=${registry.host}`);
    assert.equal(served.status, 200);
    await served.arrayBuffer();
    assert.ok(shoal.running, 'shoal never exited');
  });
});
