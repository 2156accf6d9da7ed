import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readUsage } from '../harness/process-usage.js';
import { seededEmbeddedBlob } from '../harness/seeded-store.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const GiB = 1 << 30;
const CLIENTS = 8;
const RSS_LIMIT_MiB = 200;

/** Streams a download, counting bytes; hashes only when asked (hashing 8 GiB would starve the server). */
function download(url: string, hash: boolean): Promise<{ length: number; sha256: string | undefined }> {
  return new Promise((resolve, reject) => {
    const digest = hash ? createHash('sha256') : undefined;
    let length = 0;
    request(url, (res) => {
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      res.on('data', (chunk: Buffer) => {
        length += chunk.length;
        digest?.update(chunk);
      });
      res.on('end', () =>
        resolve({ length, sha256: digest === undefined ? undefined : `sha256:${digest.digest('hex')}` }),
      );
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

describe(`memory stays bounded: ${CLIENTS} concurrent 1 GiB downloads`, { timeout: 300_000 }, () => {
  let dir: string;
  let shoal: ShoalProcess;
  let digest: string;

  before(async () => {
    dir = await shortTempDir('shoal-mem');
    digest = await seededEmbeddedBlob(join(dir, 'data'), 'memory-bound', GiB);
    shoal = new ShoalProcess(['--store', 'embedded', '--data-dir', join(dir, 'data')]);
    await shoal.start();
  });

  after(async () => {
    await shoal?.stop();
    await removeDir(dir);
  });

  it(`serves them all completely and the process peaks under ${RSS_LIMIT_MiB} MiB RSS`, async (t) => {
    const url = `${shoal.url}/v2/big/blobs/${digest}`;
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => download(url, i === 0)));
    for (const result of results) assert.equal(result.length, GiB);
    assert.equal(results[0]?.sha256, digest);
    const peak = (await readUsage(shoal.pid)).peakRssMiB;
    t.diagnostic(`peak RSS of shoal serving ${CLIENTS}×1 GiB: ${peak.toFixed(1)} MiB`);
    assert.ok(peak < RSS_LIMIT_MiB, `peak RSS ${peak.toFixed(1)} MiB`);
  });
});
