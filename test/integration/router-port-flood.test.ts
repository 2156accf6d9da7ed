import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/main/log/logger.js';
import { staticBootstrap } from '../../src/main/routing/bootstrap.js';
import { INBOUND_LIMITS } from '../../src/main/routing/libp2p/inbound-gate.js';
import { Libp2pRouter } from '../../src/main/routing/libp2p/router.js';
import { parsePsk } from '../../src/main/routing/psk.js';
import { waitFor } from '../harness/process.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/**
 * A pod on the node network holding sockets to the router port open without a word. It keeps `count` open
 * from its own loopback address, opening a replacement for each one the node closes, at most 4 a second
 * (under libp2p's per-address rate limit of 5, so every one is taken in as a handshake). Records how long
 * each socket stayed open.
 */
class SilentFlood {
  readonly lifetimesMs: number[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #timer: NodeJS.Timeout;
  #stopped = false;
  /** Sockets opened so far. */
  opened = 0;

  constructor(port: number, count: number, from = '127.0.0.2') {
    this.#timer = setInterval(() => {
      if (this.#stopped || this.#sockets.size >= count) return;
      const opened = Date.now();
      this.opened++;
      const socket = connect({ host: '127.0.0.1', port, localAddress: from });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.#sockets.delete(socket);
        if (!this.#stopped) this.lifetimesMs.push(Date.now() - opened);
      });
      this.#sockets.add(socket);
    }, 250);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const socket of this.#sockets) socket.destroy();
  }
}

const KEY = parsePsk(`/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`);

// Regression (security): libp2p lets 10 inbound connections sit mid-handshake, each for up to 10 s, so ten
// silent sockets from one pod stopped every new libp2p connection; new and restarting nodes could not join.
// Each case floods a node's router port with 10 silent sockets for the whole test, then starts nodes that
// join through it. Routers run at their defaults.
for (const psk of [undefined, KEY]) {
  describe(`router port under 10 silent sockets (${psk ? 'private network' : 'open network'})`, {
    timeout: 90_000,
  }, () => {
    let dir: string;
    const routers: Libp2pRouter[] = [];
    let flood: SilentFlood | undefined;
    const start = async (name: string, through: string[]): Promise<Libp2pRouter> => {
      const router = new Libp2pRouter(
        { log: silentLogger() },
        {
          host: '127.0.0.1',
          port: 0,
          dataDir: join(dir, name),
          registryPort: 6000 + routers.length,
          bootstrap: staticBootstrap(through),
          psk,
        },
      );
      await router.start();
      routers.push(router);
      return router;
    };

    before(async () => {
      dir = await shortTempDir('shoal-flood');
    });
    afterEach(() => flood?.stop());
    after(async () => {
      await Promise.all(routers.map((router) => router.stop()));
      await removeDir(dir);
    });

    it('new nodes still join, and each silent socket is closed after the handshake timeout', async () => {
      const seed = await start('seed', []);
      const port = Number(seed.addresses[0]?.split('/')[4]);
      flood = new SilentFlood(port, 10);
      // Let the flood open its 10 sockets: 2.5 s at 4 a second.
      await waitFor('10 silent sockets', async () => (flood?.opened ?? 0) >= 10, 10_000);
      for (const name of ['b', 'c']) {
        const node = await start(name, seed.addresses);
        await waitFor(`${name} joins through the flooded node`, async () => node.ready(), 10_000);
        assert.ok(seed.members().includes(node.selfId), `${name} is a member of the flooded node`);
      }
      await waitFor('silent sockets closed', async () => (flood?.lifetimesMs.length ?? 0) >= 10, 20_000);
      const longest = Math.max(...(flood?.lifetimesMs ?? []));
      assert.ok(
        longest < INBOUND_LIMITS.upgradeTimeoutMs + 1500,
        `a silent socket stayed open ${longest} ms (handshake timeout ${INBOUND_LIMITS.upgradeTimeoutMs} ms)`,
      );
    });
  });
}
