import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../src/main/log/logger.js';
import { Liveness } from '../../../src/main/routing/libp2p/liveness.js';

/** A fake network: which peers are connected, and whether a dial to each succeeds. */
function network() {
  const connected = new Set<string>();
  const reachable = new Set<string>();
  const dials: string[] = [];
  const liveness = new Liveness(
    {
      log: silentLogger(),
      connected: (id) => connected.has(id),
      dial: async (id) => {
        dials.push(id);
        if (!reachable.has(id)) throw new Error('connection refused');
        connected.add(id);
      },
    },
    { retryMs: 20, maxRetryMs: 80 },
  );
  return { connected, reachable, dials, liveness };
}

describe('Liveness', () => {
  it('a peer whose last connection closed is gone at once, and probed', async () => {
    const { connected, dials, liveness } = network();
    connected.add('a');
    liveness.connected('a');
    assert.equal(liveness.isGone('a'), false);
    connected.delete('a');
    liveness.disconnected('a');
    assert.equal(liveness.isGone('a'), true);
    await sleep(5);
    assert.deepEqual(dials, ['a'], 'probed at once');
    assert.equal(liveness.isGone('a'), true, 'the probe failed');
  });

  it('a closed connection to a peer that answers the probe (pruned, not dead) leaves it a member', async () => {
    const { reachable, liveness } = network();
    reachable.add('b');
    liveness.disconnected('b');
    await sleep(5);
    assert.equal(liveness.isGone('b'), false);
  });

  it('keeps probing a gone peer with backoff, and takes it back when it answers or reconnects', async () => {
    const { reachable, dials, liveness } = network();
    liveness.start();
    try {
      liveness.disconnected('c');
      await sleep(250);
      const probes = dials.length;
      assert.ok(probes >= 3 && probes <= 8, `${probes} probes in 250 ms (backoff 40, 80, 80… ms)`);
      reachable.add('c');
      await sleep(150);
      assert.equal(liveness.isGone('c'), false);
      liveness.disconnected('d');
      liveness.connected('d');
      assert.equal(liveness.isGone('d'), false, 'a peer that reconnects by itself is back at once');
    } finally {
      liveness.stop();
    }
  });
});
