import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContainerdClient } from '../../src/main/containerd/client.js';
import { ContainerdStore } from '../../src/main/containerd/store.js';
import { Containerd } from '../harness/containerd.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// What the advertiser relies on: containerd's keys and its change feed, with a real containerd.
describe('containerd store: routing keys and change notifications', { timeout: 120_000 }, () => {
  let dir: string;
  let registry: DistributionRegistry;
  let containerd: Containerd;
  let store: ContainerdStore;
  let image: SingleImageFixture;
  let changes = 0;
  const ref = (): string => `${registry.host}/watch/app:${image.tag}`;

  before(async () => {
    dir = await shortTempDir('shoal-watch');
    image = await smallImage('watch');
    registry = new DistributionRegistry(join(dir, 'registry'));
    containerd = new Containerd(join(dir, 'c'));
    await Promise.all([registry.start(), containerd.start()]);
    await pushLayout(image.dir, image.tag, registry.host, 'watch/app');
    const client = new ContainerdClient({
      socket: containerd.socket,
      namespace: containerd.namespace,
      timeoutMs: 5000,
    });
    store = new ContainerdStore({ client }, { contentPath: containerd.contentPath, timeoutMs: 5000 });
    await store.start();
    store.onChange(() => {
      changes++;
    });
  });

  after(async () => {
    await store?.stop();
    await Promise.all([containerd?.stop(), registry?.stop()]);
    await removeDir(dir);
  });

  it('notifies on a pull and lists its digests and its tag', async () => {
    const before = changes;
    await containerd.pull(ref(), ['--plain-http']);
    await waitFor('change notified', async () => changes > before, 10_000);
    const keys = await store.listKeys();
    for (const blob of [image.image.manifest, image.image.config, ...image.image.layers])
      assert.ok(keys.has(blob.digest), blob.digest);
    assert.ok(keys.has(ref()), 'the tag key <registry>/<repo>:<tag>');
  });

  it('notifies on removal, and the content leaves the keys once containerd has collected it', async () => {
    const before = changes;
    await containerd.ctr(['images', 'rm', ref()]);
    await waitFor('change notified', async () => changes > before, 10_000);
    await waitFor(
      'content collected',
      async () => {
        const keys = await store.listKeys();
        return !keys.has(ref()) && !keys.has(image.image.layers[0]?.digest ?? '');
      },
      15_000,
    );
  });
});
