import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerdClient } from '../../src/main/containerd/client.js';
import { ContainerdStore } from '../../src/main/containerd/store.js';
import { EmbeddedStore } from '../../src/main/store/embedded.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import { importOciLayout } from '../../src/main/store/oci-layout.js';
import type { WritableStore } from '../../src/main/store/store.js';
import { storeConformance } from '../conformance/store.js';
import { Containerd } from '../harness/containerd.js';
import { multiArchImage, smallImage } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { DistributionRegistry } from '../harness/registry.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';
import { startVerifier } from '../harness/verifier.js';

const REGISTRY = '127.0.0.1:5999';

async function seed(store: WritableStore): Promise<{
  small: Awaited<ReturnType<typeof smallImage>>;
  multi: Awaited<ReturnType<typeof multiArchImage>>;
}> {
  const [small, multi] = await Promise.all([smallImage('conformance'), multiArchImage()]);
  await importOciLayout(store, small.dir, { registry: REGISTRY, repository: 'conf/small' });
  await importOciLayout(store, multi.dir, { registry: REGISTRY, repository: 'conf/multi' });
  return { small, multi };
}

storeConformance('memory', async () => {
  const store = new MemoryStore();
  await store.start();
  return { store, registry: REGISTRY, ...(await seed(store)), teardown: () => store.stop() };
});

storeConformance('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-embedded-'));
  const verifier = await startVerifier();
  const store = new EmbeddedStore({ verifier }, { dataDir: dir });
  await store.start();
  const seeded = await seed(store);
  // Reopen, so the suite also proves the index survives a restart.
  await store.stop();
  const reopened = new EmbeddedStore({ verifier }, { dataDir: dir });
  await reopened.start();
  return {
    store: reopened,
    registry: REGISTRY,
    ...seeded,
    teardown: async () => {
      await reopened.stop();
      await verifier.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** containerd filled by a real pull from a real registry; `direct` picks file reads or gRPC Content/Read. */
function containerdSetup(direct: boolean) {
  return async () => {
    const dir = await shortTempDir('shoal-conf');
    const registry = new DistributionRegistry(join(dir, 'registry'));
    const containerd = new Containerd(join(dir, 'c'));
    const [small, multi] = await Promise.all([smallImage('conformance'), multiArchImage()]);
    await Promise.all([registry.start(), containerd.start()]);
    await pushLayout(small.dir, small.tag, registry.host, 'conf/small');
    await pushLayout(multi.dir, multi.tag, registry.host, 'conf/multi');
    await containerd.pull(`${registry.host}/conf/small:${small.tag}`, ['--plain-http']);
    await containerd.pull(`${registry.host}/conf/multi:${multi.tag}`, ['--plain-http']);
    const client = new ContainerdClient({
      socket: containerd.socket,
      namespace: containerd.namespace,
      timeoutMs: 5000,
    });
    const store = new ContainerdStore(
      { client },
      { contentPath: direct ? containerd.contentPath : join(dir, 'no-such-content-dir'), timeoutMs: 5000 },
    );
    await store.start();
    return {
      store,
      registry: registry.host,
      small,
      multi,
      teardown: async () => {
        await store.stop();
        await Promise.all([containerd.stop(), registry.stop()]);
        await removeDir(dir);
      },
    };
  };
}

storeConformance('containerd (content directory reads)', containerdSetup(true));
storeConformance('containerd (gRPC Content/Read)', containerdSetup(false));
