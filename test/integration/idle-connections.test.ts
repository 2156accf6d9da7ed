import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../harness/process.js';
import { readUsage, type Usage } from '../harness/process-usage.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const IDLE = 2000;
const SLOWLORIS = 200;
/** A slowloris client sends one more header byte this often: well inside any idle timer. */
const DRIP_MS = 1000;
/**
 * The longest a connection that never completes a request may stay open. uWebSockets.js closes a
 * connection that has not completed a request in 10 s; the rest is this machine's slack.
 */
const CLOSED_WITHIN_MS = 13_000;
/** What descriptors and RSS may differ from the baseline once every hostile connection is gone. */
const FD_SLACK = 8;
const RSS_SLACK_MIB = 24;

/** Opens `count` connections to `port`, `batch` at a time, each kept with the time it opened. */
async function openMany(
  host: string,
  port: number,
  count: number,
  onOpen: (socket: Socket) => void,
): Promise<Array<{ socket: Socket; opened: number; closed: Promise<number> }>> {
  const out: Array<{ socket: Socket; opened: number; closed: Promise<number> }> = [];
  for (let i = 0; i < count; i += 200) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(200, count - i) },
        () =>
          new Promise<{ socket: Socket; opened: number; closed: Promise<number> }>((resolve, reject) => {
            const socket = connect({ host, port });
            socket.once('error', reject);
            socket.once('connect', () => {
              socket.removeListener('error', reject);
              socket.on('error', () => undefined);
              const opened = performance.now();
              const closed = new Promise<number>((done) =>
                socket.once('close', () => done(performance.now() - opened)),
              );
              onOpen(socket);
              resolve({ socket, opened, closed });
            });
          }),
      ),
    );
    out.push(...batch);
  }
  return out;
}

// Every pod on the node can reach the registry port. Connections that never send a request, and clients
// that send a request's head a byte at a time (slowloris), must not hold the node: each is closed on time,
// an honest client is served while they are open, and the process's descriptors and memory come back to
// what they were once they are gone.
describe(`${IDLE} idle connections and ${SLOWLORIS} slowloris clients on the registry port`, {
  timeout: 120_000,
}, () => {
  let dir: string;
  let node: ShoalProcess;

  before(async () => {
    dir = await shortTempDir('shoal-idle');
    node = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'data')]);
    await node.start();
  });

  after(async () => {
    await node?.stop();
    await removeDir(dir);
  });

  it('closes each on time, serves an honest client meanwhile, and returns to its baseline', async (t) => {
    // Warm: the first requests allocate what every later one reuses.
    for (let i = 0; i < 200; i++) await (await fetch(`${node.url}/v2/`)).arrayBuffer();
    await sleep(500);
    const baseline = await readUsage(node.pid);
    const idle = await openMany(node.host, node.port, IDLE, () => undefined);
    const drips: NodeJS.Timeout[] = [];
    const slow = await openMany(node.host, node.port, SLOWLORIS, (socket) => {
      socket.write('GET /v2/ HTTP/1.1\r\nHost: shoal\r\n');
      const drip = setInterval(() => {
        if (!socket.destroyed) socket.write('X');
      }, DRIP_MS);
      drips.push(drip);
      socket.once('close', () => clearInterval(drip));
    });
    try {
      const open = await readUsage(node.pid);
      t.diagnostic(
        `baseline ${baseline.fds} fds, RSS ${baseline.rssMiB.toFixed(1)} MiB; with ${IDLE + SLOWLORIS} open: ${open.fds} fds, RSS ${open.rssMiB.toFixed(1)} MiB`,
      );
      const started = performance.now();
      const honest = await fetch(`${node.url}/v2/`);
      const honestMs = performance.now() - started;
      assert.equal(honest.status, 200);
      t.diagnostic(`an honest request while they were open: ${honestMs.toFixed(0)} ms`);
      assert.ok(honestMs < 1000, `an honest request took ${honestMs.toFixed(0)} ms`);
      const idleMs = await Promise.all(idle.map((c) => c.closed));
      const slowMs = await Promise.all(slow.map((c) => c.closed));
      const longest = (list: number[]): number => Math.max(...list);
      t.diagnostic(
        `idle connections closed after ${Math.min(...idleMs).toFixed(0)}–${longest(idleMs).toFixed(0)} ms; slowloris after ${Math.min(...slowMs).toFixed(0)}–${longest(slowMs).toFixed(0)} ms`,
      );
      assert.ok(
        longest(idleMs) < CLOSED_WITHIN_MS,
        `an idle connection stayed ${longest(idleMs).toFixed(0)} ms`,
      );
      assert.ok(
        longest(slowMs) < CLOSED_WITHIN_MS,
        `a slowloris client stayed ${longest(slowMs).toFixed(0)} ms`,
      );
    } finally {
      for (const drip of drips) clearInterval(drip);
      for (const c of [...idle, ...slow]) c.socket.destroy();
    }
    let after: Usage = await readUsage(node.pid);
    await waitFor(
      'descriptors and RSS back to the baseline',
      async () => {
        after = await readUsage(node.pid);
        return after.fds <= baseline.fds + FD_SLACK && after.rssMiB <= baseline.rssMiB + RSS_SLACK_MIB;
      },
      10_000,
    ).catch(() => undefined);
    t.diagnostic(`afterwards: ${after.fds} fds, RSS ${after.rssMiB.toFixed(1)} MiB`);
    assert.ok(after.fds <= baseline.fds + FD_SLACK, `${after.fds} descriptors open, ${baseline.fds} before`);
    assert.ok(
      after.rssMiB <= baseline.rssMiB + RSS_SLACK_MIB,
      `RSS ${after.rssMiB.toFixed(1)} MiB, ${baseline.rssMiB.toFixed(1)} MiB before`,
    );
    assert.equal((await fetch(`${node.url}/v2/`)).status, 200);
  });
});
