import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../../src/main/log/logger.js';
import { Metrics } from '../../../src/main/metrics/metrics.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { EmbeddedStore } from '../../../src/main/store/embedded.js';
import { GuardedStore } from '../../../src/main/verify/guarded-store.js';
import { LocalChecker } from '../../../src/main/verify/local-checker.js';
import type { VerifyPool } from '../../../src/main/verify/pool.js';
import { flipByte } from '../../harness/corrupt.js';
import { FaultyStore } from '../../harness/faulty-store.js';
import { startVerifier } from '../../harness/verifier.js';

const digestOf = (bytes: Uint8Array): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
const blobs = [1, 2, 3].map((n) => Buffer.alloc(300_000 * n, n));

describe('LocalChecker', () => {
  let verifier: VerifyPool;
  let dir: string;
  before(async () => {
    verifier = await startVerifier();
    dir = await mkdtemp(join(tmpdir(), 'shoal-scrub-'));
  });
  after(async () => {
    await verifier.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function checker(store: GuardedStore, metrics: Metrics, init = {}) {
    return new LocalChecker({ store, verifier, metrics, log: silentLogger() }, init);
  }

  it('a scrub of the embedded store deletes what is corrupt and withdraws it', async () => {
    const embedded = new EmbeddedStore({ verifier }, { dataDir: join(dir, 'embedded') });
    await embedded.start();
    for (const blob of blobs) await embedded.ingest(digestOf(blob), [blob]);
    const bad = digestOf(blobs[1] as Buffer);
    await flipByte(join(dir, 'embedded', 'blobs', 'sha256', bad.slice(7)), 299_999);
    const guarded = new GuardedStore({ store: embedded });
    let changes = 0;
    guarded.onChange(() => changes++);
    const metrics = new Metrics();
    // The count moves only once the content is gone: a test (or an alert) that waits for it finds it gone.
    const filesWhenCounted: number[] = [];
    const { localCorrupt } = metrics;
    const inc = localCorrupt.inc.bind(localCorrupt);
    localCorrupt.inc = (labels, value) => {
      filesWhenCounted.push(readdirSync(join(dir, 'embedded', 'blobs', 'sha256')).length);
      inc(labels, value);
    };
    assert.deepEqual(await checker(guarded, metrics).scrub(), { checked: 3, corrupt: 1 });
    assert.deepEqual(filesWhenCounted, [2], 'counted after the file was deleted');
    assert.equal(await guarded.stat(bad), undefined);
    assert.ok(!(await guarded.listKeys()).has(bad), 'no longer advertised');
    assert.equal((await readdir(join(dir, 'embedded', 'blobs', 'sha256'))).length, 2, 'deleted from disk');
    assert.ok(changes > 0, 'the advertiser is told');
    assert.match(await metrics.render(), /shoal_local_corrupt_total\{trigger="scrub"\} 1/);
  });

  it('checks stores without plain files through their reader, and pardons content that heals', async () => {
    const store = new FaultyStore();
    for (const blob of blobs) await store.ingest(digestOf(blob), [blob]);
    const bad = digestOf(blobs[2] as Buffer);
    store.fault = 'flip';
    store.flipAt = 800_000; // only the 900 000-byte blob reaches this offset
    const guarded = new GuardedStore({ store });
    const local = checker(guarded, new Metrics());
    const foundBefore = await guarded.stat(bad);
    assert.ok(foundBefore !== undefined);
    assert.deepEqual(await local.scrub(), { checked: 3, corrupt: 1 });
    assert.equal(await guarded.stat(bad), undefined);
    // Content found before the verdict is not served after it either.
    await assert.rejects(foundBefore.open({ start: 0, end: 9 }), /failed its digest check/);
    assert.equal(await foundBefore.localPath?.(), undefined);
    assert.ok((await store.stat(bad)) !== undefined, 'a store shoal does not own is never deleted from');
    store.fault = 'none';
    assert.equal((await local.check(bad, 'scrub'))?.ok, true);
    assert.equal((await guarded.stat(bad))?.digest, bad, 'served again once it checks out');
  });

  it('re-checks on a peer report, once per cooldown', async () => {
    const store = new FaultyStore();
    const blob = blobs[0] as Buffer;
    await store.ingest(digestOf(blob), [blob]);
    store.fault = 'flip';
    const guarded = new GuardedStore({ store });
    const metrics = new Metrics();
    const local = checker(guarded, metrics, { reportCooldownMs: 60_000 });
    assert.equal(local.report(digestOf(blob)), true);
    assert.equal(local.report(digestOf(blob)), false, 'a second report in the cooldown is dropped');
    await local.stop(); // waits for the queue to drain
    assert.equal(await guarded.stat(digestOf(blob)), undefined);
    assert.match(await metrics.render(), /shoal_corrupt_reports_total\{result="DIGEST_MISMATCH"\} 1/);
    assert.match(await metrics.render(), /shoal_local_corrupt_total\{trigger="report"\} 1/);
  });

  it('a scrub keeps to its byte rate', async () => {
    const store = new FaultyStore();
    const blob = Buffer.alloc(2 << 20, 7);
    await store.ingest(digestOf(blob), [blob]);
    const started = performance.now();
    await checker(new GuardedStore({ store }), new Metrics(), { bytesPerSecond: 8 << 20 }).scrub();
    assert.ok(performance.now() - started >= 200, '2 MiB at 8 MiB/s takes about 250 ms');
  });
});
