import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '../../src/main/oci/digest.js';
import { FaultyStore } from '../harness/faulty-store.js';
import { get, memberPair, rawRequest, startRegistry } from '../harness/http.js';
import { seededBytes } from '../harness/images.js';

const MiB = 1 << 20;

async function blobOf(size: number, seed: string): Promise<{ bytes: Buffer; digest: Digest }> {
  const parts: Buffer[] = [];
  for await (const part of seededBytes(seed, size)) parts.push(part);
  const bytes = Buffer.concat(parts);
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest };
}

/** Downloads with node:http, optionally pausing the socket after every chunk; returns hash and length. */
function download(
  url: string,
  opts: { pauseMs?: number; abortAfter?: number } = {},
): Promise<{ status: number; length: number; sha256: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let length = 0;
    const req = request(url, (res) => {
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
        if (opts.abortAfter !== undefined && length >= opts.abortAfter) {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, length, sha256: '', complete: false });
          return;
        }
        if (opts.pauseMs !== undefined) {
          res.pause();
          setTimeout(() => res.resume(), opts.pauseMs);
        }
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          length,
          sha256: `sha256:${hash.digest('hex')}`,
          complete: res.complete,
        }),
      );
      res.on('error', () => resolve({ status: res.statusCode ?? 0, length, sha256: '', complete: false }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('blob streaming under stress', { timeout: 120_000 }, () => {
  let store: FaultyStore;
  let url: string;
  let port: number;
  let stop: () => Promise<void>;
  let big: { bytes: Buffer; digest: Digest };
  const blobUrl = (): string => `${url}/v2/app/blobs/${big.digest}`;

  before(async () => {
    store = new FaultyStore();
    big = await blobOf(24 * MiB, 'streaming');
    await store.ingest(big.digest, [big.bytes]);
    // Four buffers of 256 KiB: two streams at a time, so exhaustion and reuse happen in these tests.
    ({ url, port, stop } = await startRegistry(
      store,
      {},
      { chunkBytes: 256 << 10, buffers: 4, timeoutMs: 1500 },
    ));
  });
  after(() => stop());

  // Regression: onWritable handlers registered per chunk were ignored by uWS after the first, so a reader
  // slower than loopback stalled mid-body forever.
  it('delivers every byte to a slow reader', async () => {
    const result = await download(blobUrl(), { pauseMs: 2 });
    assert.equal(result.status, 200);
    assert.equal(result.length, big.bytes.length);
    assert.equal(result.sha256, big.digest);
  });

  it('serves a slow ranged read exactly', async () => {
    const result = await new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      request(blobUrl(), { headers: { Range: `bytes=${5 * MiB}-` } }, (res) => {
        assert.equal(res.statusCode, 206);
        res.on('data', (chunk: Buffer) => {
          parts.push(chunk);
          res.pause();
          setTimeout(() => res.resume(), 1);
        });
        res.on('end', () => resolve(Buffer.concat(parts)));
      })
        .on('error', reject)
        .end();
    });
    assert.ok(result.equals(big.bytes.subarray(5 * MiB)));
  });

  it('returns buffers when clients abort mid-stream, so later downloads still run', async () => {
    for (let i = 0; i < 6; i++) {
      const aborted = await download(blobUrl(), { abortAfter: MiB });
      assert.equal(aborted.complete, false);
    }
    await sleep(50);
    const result = await download(blobUrl());
    assert.equal(result.sha256, big.digest);
  });

  it('queues streams beyond the pool instead of failing or growing', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => download(blobUrl())));
    for (const result of results) assert.equal(result.sha256, big.digest);
  });

  it('cuts the connection when the store ends a body early: never a short 200', async () => {
    store.fault = 'short';
    try {
      await assert.rejects(
        rawRequest(port, get(`/v2/app/blobs/${big.digest}`), { timeoutMs: 5000 }),
        /connection closed without a complete response/,
      );
    } finally {
      store.fault = 'none';
    }
  });

  it('cuts the connection when a store read hangs past the timeout', async () => {
    store.fault = 'hang';
    try {
      const started = Date.now();
      await assert.rejects(
        rawRequest(port, get(`/v2/app/blobs/${big.digest}`), { timeoutMs: 10_000 }),
        /connection closed/,
      );
      assert.ok(Date.now() - started < 5000, 'bounded by the store timeout');
    } finally {
      store.fault = 'none';
    }
    const result = await download(blobUrl());
    assert.equal(result.sha256, big.digest, 'the buffers of the hung stream came back');
  });

  // Regression: the read-ahead for the next chunk failed (a digest mismatch) while the stream waited to write
  // the chunk before it (a slow client, or the peer upload limit); nobody awaited the read yet, and the
  // process died of an unhandled rejection.
  it('survives a read that fails while the stream waits to write', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', record);
    // Peer requests are limited to 256 KiB/s: the second chunk waits about a second before it is written.
    const members = await memberPair();
    const limited = await startRegistry(
      store,
      {},
      { chunkBytes: 256 << 10, buffers: 4, timeoutMs: 1500, peerUploadRate: 256 << 10 },
      store,
      members.server,
    );
    store.fault = 'fail';
    store.shortAfter = 512 << 10;
    try {
      await assert.rejects(
        rawRequest(
          limited.port,
          get(`/v2/app/blobs/${big.digest}`, await members.headers('GET', `/v2/app/blobs/${big.digest}`)),
        ),
        /connection closed without a complete response/,
      );
      assert.deepEqual(unhandled, [], 'a failed read-ahead is always handled');
    } finally {
      process.off('unhandledRejection', record);
      store.fault = 'none';
      store.shortAfter = 2 << 20;
      await limited.stop();
    }
  });
});
