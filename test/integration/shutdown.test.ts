import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../harness/process.js';
import { pacedDownload, refused } from '../harness/readers.js';
import { seededEmbeddedBlob } from '../harness/seeded-store.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const MiB = 1 << 20;
/** The case: four 64 MiB layers going out at 4 MB/s each when Kubernetes rolls the pod. */
const SIZE = 64 * MiB;
const RATE = 4_000_000;

describe('SIGTERM drains a node (what a DaemonSet rollout sends)', { timeout: 120_000 }, () => {
  let dir: string;
  let digest: string;

  before(async () => {
    dir = await shortTempDir('shoal-drain');
    digest = await seededEmbeddedBlob(join(dir, 'seed'), 'drain', SIZE);
  });
  after(() => removeDir(dir));

  async function node(name: string, extra: string[]): Promise<ShoalProcess> {
    const { cp } = await import('node:fs/promises');
    await cp(join(dir, 'seed'), join(dir, name), { recursive: true });
    const shoal = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, name), ...extra]);
    await shoal.start();
    return shoal;
  }

  it('at the default --shutdown-grace, 4 downloads in flight finish whole and new connections are refused', async () => {
    const shoal = await node('whole', []);
    try {
      // Through the registry port, as containerd pulls.
      const downloads = [1, 2, 3, 4].map(() =>
        pacedDownload(`${shoal.url}/v2/app/blobs/${digest}`, { bytesPerSecond: RATE }),
      );
      await sleep(1500);
      assert.ok(
        downloads.every((d) => d.received() > 0 && d.received() < SIZE),
        'all 4 under way',
      );
      const signalled = performance.now();
      shoal.kill('SIGTERM');
      await sleep(300);
      assert.ok(await refused(shoal.host, shoal.port), 'registry port refuses new connections');
      const results = await Promise.all(downloads.map((d) => d.done));
      for (const result of results) {
        assert.equal(result.status, 200);
        assert.ok(result.complete, `cut at ${result.length} of ${SIZE} bytes`);
        assert.equal(result.length, SIZE);
        assert.equal(result.sha256, digest);
      }
      const code = await shoal.exited;
      const ms = performance.now() - signalled;
      assert.equal(code, 0, shoal.output);
      assert.ok(ms < 25_000, `exited ${Math.round(ms)} ms after SIGTERM, past the 25 s grace`);
    } finally {
      await shoal.stop();
    }
  });

  it('with a grace shorter than the downloads, they are cut at the grace and the exit status is 3', async () => {
    // 2 s instead of the default 25 s: the case needs a grace shorter than the downloads' 16 s.
    const shoal = await node('cut', ['--shutdown-grace', '2s']);
    try {
      const downloads = [1, 2, 3, 4].map(() =>
        pacedDownload(`${shoal.url}/v2/app/blobs/${digest}`, { bytesPerSecond: RATE }),
      );
      await sleep(1000);
      const signalled = performance.now();
      shoal.kill('SIGTERM');
      const results = await Promise.all(downloads.map((d) => d.done));
      const cutAfter = performance.now() - signalled;
      for (const result of results) assert.equal(result.complete, false);
      assert.ok(cutAfter >= 1800 && cutAfter < 6000, `cut ${Math.round(cutAfter)} ms after SIGTERM`);
      assert.equal(await shoal.exited, 3, shoal.output);
      // 'exit' can come before the last of the child's stderr is read.
      await waitFor(
        'the cut named in the log',
        async () => /--shutdown-grace ran out/.test(shoal.output),
        5000,
      );
    } finally {
      await shoal.stop();
    }
  });
});
