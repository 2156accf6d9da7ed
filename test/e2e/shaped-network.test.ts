import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type LinkShape, ShapedNetwork } from '../harness/netns.js';
import { Child, run, waitFor } from '../harness/process.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/** Node 3 adds no delay: the pair (3, 4) shows what the bridge alone takes. */
const LINKS: LinkShape[] = [
  { mbit: 1000, delayMs: 0.1 },
  { mbit: 100, delayMs: 0.4 },
  { mbit: 10_000, delayMs: 0.7 },
  { mbit: 1000 },
  { mbit: 1000 },
];
const PORT = 7000;
const ROUNDS = 500;
/** What the delay line may add to the fastest round trip: it wakes up late, in each direction. */
const WAKE_UP_SLACK_MS = 0.6;

/** A TCP echo server on node j's address, for the pinger below. */
const ECHO = `require('node:net').createServer((s) => { s.setNoDelay(true); s.pipe(s); })
  .listen(${PORT}, process.argv[1], () => console.log('up'));`;
/** ROUNDS one-byte round trips over one connection: prints their minimum and median in ms. */
const PING = `const s = require('node:net').connect(${PORT}, process.argv[1], async () => {
  s.setNoDelay(true); const took = [];
  for (let i = 0; i < ${ROUNDS}; i++) {
    const t = performance.now();
    await new Promise((r) => { s.once('data', r); s.write('x'); });
    took.push(performance.now() - t);
  }
  took.sort((a, b) => a - b);
  console.log(JSON.stringify({ min: took[0], median: took[${ROUNDS / 2}] })); s.destroy();
});`;

// The links have a round trip of 0.2–2 ms; netem, which would add it, is not in this machine's
// kernel. The harness adds it with NFQUEUE and a delay line (test/harness/delay-line.py): this checks that
// the fastest round trip between two nodes is the sum of their links' delays (and what the delay line takes
// to wake up), and that the bridge adds next to none.
describe('the shaped network: round trips are the sum of both links’ delays', { timeout: 120_000 }, () => {
  let dir: string;
  let network: ShapedNetwork;
  const echoes: Child[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-shaped');
    network = await ShapedNetwork.create(dir, LINKS);
    for (const [j] of LINKS.entries()) {
      const [command, args] = network.exec(j, process.execPath, ['-e', ECHO, network.address(j)]);
      const echo = new Child(command, args);
      echoes.push(echo);
      await waitFor(
        'echo server',
        async () => echo.output.includes('up'),
        10_000,
        () => (echo.running ? undefined : echo.output),
      );
    }
  });
  after(async () => {
    await Promise.all(echoes.map((echo) => echo.stop(1000)));
    await network?.remove();
    await removeDir(dir);
  });

  async function roundTrip(i: number, j: number): Promise<{ min: number; median: number }> {
    const [command, args] = network.exec(i, process.execPath, ['-e', PING, network.address(j)]);
    return JSON.parse(await run(command, args, 30_000)) as { min: number; median: number };
  }

  it('between delayed nodes: at least the sum, within the issue’s 0.2–2 ms', async (t) => {
    for (const [i, j] of [
      [0, 1],
      [0, 2],
      [1, 2],
      [3, 2],
    ] as const) {
      const expected = (LINKS[i]?.delayMs ?? 0) + (LINKS[j]?.delayMs ?? 0);
      const { min, median } = await roundTrip(i, j);
      t.diagnostic(
        `node ${i} ↔ node ${j}: ${expected.toFixed(2)} ms of delay; round trip min ${min.toFixed(3)} ms, ` +
          `median ${median.toFixed(3)} ms`,
      );
      // The fastest of 500 round trips is the link's own; the median also holds how busy the machine is.
      assert.ok(min >= expected, `round trip ${min} ms is under the links' ${expected} ms`);
      assert.ok(min <= expected + WAKE_UP_SLACK_MS, `fastest round trip ${min} ms for ${expected} ms`);
      assert.ok(min >= 0.2 && min <= 2, `fastest round trip ${min} ms`);
    }
  });

  it('between nodes without delay, only the bridge’s own time', async (t) => {
    const { min, median } = await roundTrip(3, 4);
    t.diagnostic(`node 3 ↔ node 4: round trip min ${min.toFixed(3)} ms, median ${median.toFixed(3)} ms`);
    // Under the issue's lowest round trip: the delayed pairs' round trips come from the delay line. Not a
    // tighter bound: the bridge's own time depends on the host. This machine measured 0.05 ms at one session
    // and 0.09-0.12 ms idle at another, where a clean run failed a bound of 0.1 ms with 0.13 ms.
    assert.ok(min < 0.2, `round trip ${min} ms with no delay on either link`);
  });
});
