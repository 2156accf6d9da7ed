import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, waitFor } from '../harness/process.js';
import { seededEmbeddedBlob } from '../harness/seeded-store.js';
import { ShoalProcess, staticP2pArgs, waitForMesh } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const ESTABLISHED = 0x01;
const CLOSE_WAIT = 0x08;

/**
 * Requests that reached one of `ports` and that the (stopped) server there has not read: its side of each
 * such connection holds unread bytes (more than the one a FIN takes). ESTABLISHED: the asker still waits; CLOSE_WAIT: the asker gave up.
 */
async function unreadRequests(ports: readonly number[]): Promise<{ waiting: number; abandoned: number }> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  let waiting = 0;
  let abandoned = 0;
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const localPort = Number.parseInt((fields[1] as string).split(':')[1] as string, 16);
    const state = Number.parseInt(fields[3] as string, 16);
    const unread = Number.parseInt((fields[4] as string).split(':')[1] as string, 16);
    // A FIN counts one in the receive queue: an idle keep-alive connection the asker closed (its HEADs
    // from before the freeze) holds 1 unread, a request hundreds.
    if (!ports.includes(localPort) || unread <= 1) continue;
    if (state === ESTABLISHED) waiting++;
    if (state === CLOSE_WAIT) abandoned++;
  }
  return { waiting, abandoned };
}

// Three nodes hold a blob; a fourth is asked for it while the three are frozen (SIGSTOP: their kernels
// still accept connections and take the requests, but nothing answers), so the fourth's race for it hangs.
// The client then disconnects: the race must stop at once, its peer requests abandoned, none started after.
describe('a client that disconnects mid-race stops the race', { timeout: 180_000 }, () => {
  let dir: string;
  let digest: string;
  const nodes: ShoalProcess[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-cancel');
    for (const name of ['n0', 'n1', 'n2'])
      digest = await seededEmbeddedBlob(join(dir, name), 'cancel', 4 << 20);
    const routerPorts = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    for (let i = 0; i < 4; i++) {
      const p2p = staticP2pArgs({
        dataDir: join(dir, `n${i}`),
        routerPort: routerPorts[i] as number,
        bootstrapPort: routerPorts[0] as number,
      });
      nodes.push(new ShoalProcess(['--store', 'embedded', ...p2p]));
    }
    await Promise.all(nodes.map((node) => node.start()));
    await waitForMesh(nodes);
  });

  after(async () => {
    for (const node of nodes) node.kill('SIGCONT');
    await Promise.all(nodes.map((node) => node.stop()));
    await removeDir(dir);
  });

  it('abandons every peer request when the client leaves, and starts none after', async (t) => {
    const [holder0, holder1, holder2, asker] = nodes as [
      ShoalProcess,
      ShoalProcess,
      ShoalProcess,
      ShoalProcess,
    ];
    const holders = [holder0, holder1, holder2];
    const path = `/v2/app/blobs/${digest}`;
    // Known to the asker (its lookup cache names the three), as after any earlier pull.
    await waitFor(
      'the blob found through the peers',
      async () => (await fetch(`${asker.url}${path}`, { method: 'HEAD' })).status === 200,
      30_000,
    );
    const peerPorts = holders.map((node) => node.port);
    for (const node of holders) node.kill('SIGSTOP');
    try {
      const client = request(`${asker.url}${path}`);
      client.on('error', () => undefined);
      client.end();
      const deadline = Date.now() + 5000;
      while ((await unreadRequests(peerPorts)).waiting === 0) {
        assert.ok(Date.now() < deadline, 'no peer request within 5 s');
        await sleep(10);
      }
      client.destroy();
      const left = performance.now();
      await sleep(1000);
      const soon = await unreadRequests(peerPorts);
      await sleep(1500);
      const later = await unreadRequests(peerPorts);
      t.diagnostic(
        `peer requests: ${soon.waiting + soon.abandoned} reached the peers; 1 s after the client left ${soon.waiting} still waited, ${soon.abandoned} abandoned (${Math.round(performance.now() - left)} ms)`,
      );
      assert.equal(soon.waiting, 0, 'a peer request still waits after the client left');
      assert.ok(soon.abandoned >= 1, 'the race had reached a peer');
      assert.ok(soon.abandoned <= 3, 'at most --mirror-resolve-retries peers asked');
      assert.deepEqual(later, soon, 'a peer request was started after the client left');
    } finally {
      for (const node of holders) node.kill('SIGCONT');
    }
  });
});
