import { join } from 'node:path';
import { silentLogger } from '../../src/main/log/logger.js';
import { staticBootstrap } from '../../src/main/routing/bootstrap.js';
import { Libp2pRouter } from '../../src/main/routing/libp2p/router.js';
import { MemoryNetwork, MemoryRouter } from '../../src/main/routing/memory.js';
import { routerConformance } from '../conformance/router.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

routerConformance('memory', async (size) => {
  const network = new MemoryNetwork();
  const routers = Array.from(
    { length: size },
    (_, i) => new MemoryRouter({ network }, { id: `node-${i}`, registry: `http://10.0.0.${i}:5000` }),
  );
  for (const router of routers) await router.start();
  return {
    routers,
    registries: routers.map((router) => router.registry),
    teardown: async () => {
      for (const router of routers) await router.stop();
    },
  };
});

routerConformance('libp2p (loopback)', async (size) => {
  const dir = await shortTempDir('shoal-router');
  const routers: Libp2pRouter[] = [];
  for (let i = 0; i < size; i++) {
    const router = new Libp2pRouter(
      { log: silentLogger() },
      {
        host: '127.0.0.1',
        port: 0,
        dataDir: join(dir, `node-${i}`),
        registryPort: 6000 + i,
        // Every node gets the same list, itself included: it must skip its own entry.
        bootstrap: staticBootstrap(routers[0] === undefined ? [] : routers[0].addresses),
      },
    );
    await router.start();
    routers.push(router);
  }
  return {
    routers,
    registries: routers.map((_, i) => `http://127.0.0.1:${6000 + i}`),
    teardown: async () => {
      await Promise.all(routers.map((router) => router.stop()));
      await removeDir(dir);
    },
  };
});
