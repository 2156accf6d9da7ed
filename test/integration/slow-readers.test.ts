import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nonReadingRequest, pacedDownload } from '../harness/readers.js';
import { seededEmbeddedBlob } from '../harness/seeded-store.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const MiB = 1 << 20;

/** Fraction of buffer waits at or under 100 ms, from the node's histogram. */
async function bufferWaits(shoal: ShoalProcess): Promise<{ count: number; within100ms: number }> {
  return {
    count: await shoal.metric('shoal_stream_buffer_wait_seconds_count'),
    within100ms: await shoal.metric('shoal_stream_buffer_wait_seconds_bucket{le="0.1"}'),
  };
}

describe('slow and silent readers beside fast ones, at the defaults', { timeout: 240_000 }, () => {
  let dir: string;
  let digest: string;
  let shoal: ShoalProcess;

  before(async () => {
    dir = await shortTempDir('shoal-slow');
    digest = await seededEmbeddedBlob(join(dir, 'data'), 'slow-readers', 256 * MiB);
    shoal = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'data')]);
    await shoal.start();
  });
  after(async () => {
    await shoal?.stop();
    await removeDir(dir);
  });

  it('a client reading at 50 KB/s for 36 s is not cut while 8 fast clients each get 256 MiB', async (t) => {
    const path = `/v2/app/blobs/${digest}`;
    const slow = pacedDownload(`${shoal.url}${path}`, { bytesPerSecond: 50_000 });
    const started = performance.now();
    let slowEnded = false;
    void slow.done.then(() => {
      slowEnded = true;
    });
    await sleep(5000);
    const fastStarted = performance.now();
    const fast = await Promise.all(
      Array.from({ length: 8 }, () => pacedDownload(`${shoal.url}${path}`).done),
    );
    const fastMs = performance.now() - fastStarted;
    for (const result of fast) {
      assert.equal(result.status, 200);
      assert.equal(result.length, 256 * MiB);
      assert.equal(result.sha256, digest);
    }
    t.diagnostic(
      `8 × 256 MiB beside the slow reader: ${Math.round(fastMs)} ms, ${((8 * 256 * MiB) / (fastMs / 1000) / 1e9).toFixed(2)} GB/s`,
    );
    // 36 s: past the default --idle-timeout (30 s), which would cut a reader taking nothing, with room for
    // a timer that fired late; any bound scaled to it, not to the reader's progress, would have cut it.
    const SECONDS = 36;
    await sleep(Math.max(0, SECONDS * 1000 - (performance.now() - started)));
    const got = slow.received();
    t.diagnostic(`slow reader after ${Math.round(performance.now() - started)} ms: ${got} bytes`);
    assert.equal(slowEnded, false, 'the slow reader was cut');
    assert.ok(got >= 0.9 * 50_000 * SECONDS, `the slow reader got only ${got} bytes in ${SECONDS} s`);
    slow.abort();
    const waits = await bufferWaits(shoal);
    assert.equal(waits.within100ms, waits.count, 'a fast client waited over 100 ms for a buffer');
  });

  it('100 connections that never read do not make another request wait over 100 ms for a buffer', async (t) => {
    const silent: Socket[] = [];
    try {
      for (let i = 0; i < 100; i++)
        silent.push(await nonReadingRequest(shoal.host, shoal.port, `/v2/app/blobs/${digest}`));
      // Each fills its socket buffers and then keeps a write waiting: long enough to be parked.
      await sleep(2000);
      const parked = await shoal.metric('shoal_stream_parked');
      t.diagnostic(
        `parked: ${parked} streams, ${Math.round((await shoal.metric('shoal_stream_parked_bytes')) / MiB)} MiB`,
      );
      const before = await bufferWaits(shoal);
      const others = await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) =>
            pacedDownload(`${shoal.url}/v2/app/blobs/${digest}`, {
              headers: { range: `bytes=${i * MiB}-${(i + 1) * MiB - 1}` },
            }).done,
        ),
      );
      for (const result of others) {
        assert.equal(result.status, 206);
        assert.equal(result.length, MiB);
      }
      const afterwards = await bufferWaits(shoal);
      assert.equal(afterwards.count - before.count, 40);
      assert.equal(
        afterwards.within100ms - before.within100ms,
        40,
        'a request waited over 100 ms for a stream buffer',
      );
      assert.equal(parked, 100, 'every silent connection is parked outside the pool');
    } finally {
      for (const socket of silent) socket.destroy();
    }
  });

  it('a connection that takes no byte for --idle-timeout is cut; one that keeps reading is not', async () => {
    // 3 s instead of the default 30 s: waiting out the default would add 30 s to every run.
    const quick = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(dir, 'data'),
      '--idle-timeout',
      '3s',
    ]);
    await quick.start();
    try {
      const silent = await nonReadingRequest(quick.host, quick.port, `/v2/app/blobs/${digest}`);
      // A reader that keeps reading, fast enough that the server sees it: what the server can see is the
      // socket taking bytes, and the kernel opens a receive window it has grown (here from 147 KB to 582 KB
      // in seconds) only once much of it has drained. A 100 KB/s reader went over 3 s without the server's
      // write offset moving, once in a clean-clone run, and was cut while reading. At 20 MB/s it reads
      // about 120 MB of the 256 MB in the 6 s. A slow reader at the default --idle-timeout is the first test.
      const trickle = pacedDownload(`${quick.url}/v2/app/blobs/${digest}`, {
        bytesPerSecond: 20 * MiB,
        maxPauseMs: 1000,
      });
      await sleep(6000);
      assert.equal(
        await quick.metric('shoal_stream_stalled_total'),
        1,
        `one response cut (the reader had ${trickle.received()} bytes); the node said:\n${quick.output}`,
      );
      // A paused socket never sees the close: read now, and what arrives is what was sent before the cut.
      const received = await new Promise<number>((resolve) => {
        let bytes = 0;
        silent.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        silent.once('close', () => resolve(bytes));
        silent.resume();
      });
      assert.ok(received < 64 * MiB, `the silent connection got ${received} bytes: it was not cut`);
      assert.ok(trickle.received() > 60 * MiB, `the reader got ${trickle.received()} bytes`);
      trickle.abort();
    } finally {
      await quick.stop();
    }
  });
});
