import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/main/log/logger.js';
import { Membership } from '../../src/main/peer/membership.js';
import { staticBootstrap } from '../../src/main/routing/bootstrap.js';
import { Libp2pRouter } from '../../src/main/routing/libp2p/router.js';
import type { Provider } from '../../src/main/routing/router.js';
import { waitFor } from '../harness/process.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const KEY = `sha256:${'5'.repeat(64)}`;

async function firstProvider(router: Libp2pRouter, key: string): Promise<Provider | undefined> {
  for await (const provider of router.lookup(key, AbortSignal.timeout(5000))) return provider;
  return undefined;
}

// Regression: a node reported ready before kad-dht had run its first self-lookup, which every query waits
// for, so its first requests missed what the cluster held; and the others learnt of it only at their next
// refresh. Routers here run at their defaults.
describe('libp2p router: joining, and a restart on another registry port', { timeout: 60_000 }, () => {
  let dir: string;
  const routers: Libp2pRouter[] = [];
  const start = async (name: string, registryPort: number, through: string[]): Promise<Libp2pRouter> => {
    const router = new Libp2pRouter(
      { log: silentLogger() },
      {
        host: '127.0.0.1',
        port: 0,
        dataDir: join(dir, name),
        registryPort,
        bootstrap: staticBootstrap(through),
      },
    );
    await router.start();
    routers.push(router);
    return router;
  };

  before(async () => {
    dir = await shortTempDir('shoal-join');
  });
  after(async () => {
    await Promise.all(routers.map((router) => router.stop()));
    await removeDir(dir);
  });

  it('a node that turns ready finds what the others hold on its first lookup, and they know it at once', async () => {
    const a = await start('a', 6000, []);
    const b = await start('b', 6001, a.addresses);
    await waitFor('a and b ready', async () => a.ready() && b.ready(), 10_000);
    await a.advertise([KEY]);
    const c = await start('c', 6002, a.addresses);
    await waitFor('c ready', async () => c.ready(), 10_000);
    const found = await firstProvider(c, KEY);
    assert.equal(found?.registry, 'http://127.0.0.1:6000');
    await waitFor(
      'a and b know c',
      async () => [a, b].every((each) => each.members().includes(c.selfId)),
      2000,
    );
  });

  it('a node restarted with the same identity on a new registry port is found on the new port', async () => {
    const [a, b] = routers as [Libp2pRouter, Libp2pRouter];
    const id = a.selfId;
    const remembered = await firstProvider(b, KEY);
    assert.equal(remembered?.registry, 'http://127.0.0.1:6000');
    await a.stop();
    await waitFor('b knows a is gone', async () => !b.members().includes(id), 5000);
    assert.equal(await firstProvider(b, KEY), undefined, 'a gone node is not handed out');
    const again = await start('a', 7000, b.addresses);
    assert.equal(again.selfId, id);
    await waitFor('a back', async () => again.ready() && b.members().includes(id), 10_000);
    assert.equal(
      b.current(remembered)?.registry,
      'http://127.0.0.1:7000',
      'what a cache remembered is re-checked',
    );
    for (const router of routers.slice(1, 3)) {
      // Its provider records from before the restart still name it; where it serves now is what counts. A
      // node that has just reconnected skips it for the moment its identify answer takes, and must never
      // hand out the port from before the restart. Regression: one did, in 1 of 5 clean runs.
      let stale = false;
      await waitFor(
        'found on the new port',
        async () => {
          const registry = (await firstProvider(router, KEY))?.registry;
          stale ||= registry === 'http://127.0.0.1:6000';
          return registry === 'http://127.0.0.1:7000';
        },
        2000,
      );
      assert.equal(stale, false, 'never the port from before the restart');
    }
  });

  // Regression: libp2p keeps no addresses for the node itself, and kad-dht drops a provider without any from
  // its answer, so a holder asked directly left itself out.
  it('a holder asked directly names itself', async () => {
    const holder = await start('holder', 8000, []);
    const helper = await start('helper', 8001, holder.addresses);
    await waitFor('holder and helper ready', async () => holder.ready() && helper.ready(), 10_000);
    const key = `sha256:${'6'.repeat(64)}`;
    await holder.advertise([key]);
    await helper.stop();
    // The newcomer's only way to the record is to ask the holder itself.
    const newcomer = await start('newcomer', 8002, holder.addresses);
    await waitFor('newcomer ready', async () => newcomer.ready(), 10_000);
    assert.equal((await firstProvider(newcomer, key))?.registry, 'http://127.0.0.1:8000');
  });

  // Regression: the registry port listens before the router starts (the router announces that port), and a
  // pull-through request in between asked the router for its id and got "router is not started", a 500.
  // Seen in 1 of 5 clean runs of the cache-scrub test; half the runs of it failed on 2 loaded cores.
  it('before it starts, a router with its identity loaded knows its id and answers as a node alone', async () => {
    const a = routers[1] as Libp2pRouter;
    const early = new Libp2pRouter(
      { log: silentLogger() },
      {
        host: '127.0.0.1',
        port: 0,
        dataDir: join(dir, 'early'),
        registryPort: 9000,
        bootstrap: staticBootstrap(a.addresses),
      },
    );
    await early.load();
    const id = early.selfId;
    assert.equal(await firstProvider(early, KEY), undefined);
    assert.deepEqual(early.members(), []);
    assert.equal(await early.provider(a.selfId, AbortSignal.timeout(3000)), undefined);
    assert.deepEqual(new Membership({ router: early }).electorate(), [id], 'it elects itself alone');
    await early.start();
    routers.push(early);
    assert.equal(early.selfId, id, 'and starts under that id');
    await waitFor('early ready', async () => early.ready(), 10_000);
    assert.equal((await firstProvider(early, KEY))?.registry, 'http://127.0.0.1:7000');
  });
});
