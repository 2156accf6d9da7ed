import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Containerd } from '../harness/containerd.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { containerdStoreArgs, type ShoalProcess, startWithPeer } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// containerd restarts (an upgrade, a crash, a node's config change) and makes a new socket file. A shoal
// at its defaults, on the socket's path, keeps serving what containerd holds once it is back, and hears of
// what containerd pulls after: it reconnects and subscribes to containerd's events again, without a
// restart of its own. In Kubernetes the socket's directory is mounted for this (k8s/README.md).
describe('containerd restarts under a running shoal', { timeout: 120_000 }, () => {
  let dir: string;
  let registry: DistributionRegistry;
  let containerd: Containerd;
  let shoal: ShoalProcess | undefined;
  /** A member beside it: a node advertises what it holds only when it is not alone. */
  let peer: ShoalProcess | undefined;
  let first: SingleImageFixture;
  let second: SingleImageFixture;

  const layer = (image: SingleImageFixture): OciDescriptor => image.image.layers[0] as OciDescriptor;
  const fetchLayer = async (image: SingleImageFixture): Promise<{ status: number; digest: string }> => {
    const response = await fetch(
      `${shoal?.url}/v2/restart/app/blobs/${layer(image).digest}?ns=${registry.host}`,
    );
    const body = Buffer.from(await response.arrayBuffer());
    return { status: response.status, digest: `sha256:${createHash('sha256').update(body).digest('hex')}` };
  };
  const advertised = async (): Promise<number> =>
    (await shoal?.debugState())?.routing?.advertised.digest ?? 0;

  before(async () => {
    dir = await shortTempDir('shoal-ctrd-restart');
    [first, second] = await Promise.all([smallImage('restart-one'), smallImage('restart-two')]);
    registry = new DistributionRegistry(join(dir, 'registry'));
    containerd = new Containerd(join(dir, 'c'));
    await Promise.all([registry.start(), containerd.start()]);
    await pushLayout(first.dir, first.tag, registry.host, 'restart/one');
    await pushLayout(second.dir, second.tag, registry.host, 'restart/two');
    await containerd.pull(`${registry.host}/restart/one:${first.tag}`, ['--plain-http']);
    ({ shoal, peer } = await startWithPeer(dir, containerdStoreArgs(containerd)));
  });

  after(async () => {
    await shoal?.stop();
    await peer?.stop();
    await containerd?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('serves what containerd holds again once it is back, and hears of what it pulls after', async (t) => {
    assert.deepEqual(await fetchLayer(first), { status: 200, digest: layer(first).digest });
    await waitFor('the first image advertised', async () => (await advertised()) > 0, 15_000);
    const before = await advertised();
    // The socket file is made anew (its inode number may be reused, its change time is new).
    const made = statSync(containerd.socket).ctimeMs;
    await containerd.stop();
    // An upgrade keeps containerd away for seconds, while pulls go on asking. Each answer comes at once
    // (containerd then fetches from the registry itself), and gRPC's reconnect backoff grows meanwhile.
    const down = Date.now();
    while (Date.now() - down < 8000) {
      const asked = Date.now();
      await fetchLayer(first);
      assert.ok(
        Date.now() - asked < 2000,
        `an answer took ${Date.now() - asked} ms while containerd was down`,
      );
      await sleep(200);
    }
    await containerd.start();
    assert.ok(statSync(containerd.socket).ctimeMs > made, 'containerd made a new socket');
    // Within about a second of containerd being back: the gRPC channel's reconnect backoff is capped at
    // 1 s (left at gRPC's default, it had grown to several seconds by now).
    const back = Date.now();
    await waitFor('served again', async () => (await fetchLayer(first)).status === 200, 15_000);
    const ms = Date.now() - back;
    t.diagnostic(`served again ${ms} ms after containerd was back`);
    assert.ok(ms < 2500, `served again after ${ms} ms`);
    // A pull after the restart reaches shoal through the renewed event subscription.
    await containerd.pull(`${registry.host}/restart/two:${second.tag}`, ['--plain-http']);
    await waitFor('the second image advertised', async () => (await advertised()) > before, 15_000);
    assert.deepEqual(await fetchLayer(second), { status: 200, digest: layer(second).digest });
    assert.ok(shoal?.running, 'shoal never exited');
  });
});
