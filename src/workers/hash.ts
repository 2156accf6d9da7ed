/**
 * Digest worker: the only place shoal hashes content. Each export is a piscina task. Stream tasks are
 * asynchronous and long-lived, so one worker runs many of them at once (the pool sets
 * concurrentTasksPerWorker); each chunk is hashed synchronously and acknowledged at once.
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import type {
  ChunkAck,
  FileTask,
  HashAlgorithm,
  StreamMessage,
  StreamTask,
  Verdict,
  VerdictCode,
} from './protocol.js';
import { PROGRESS, WAKE_AT } from './protocol.js';

const FILE_CHUNK_BYTES = 1 << 20;

function verdict(
  algorithm: HashAlgorithm,
  hash: Hash,
  expected: string,
  bytes: number,
  size: number,
): Verdict {
  const digest = `${algorithm}:${hash.digest('hex')}`;
  if (bytes !== size) {
    return { ok: false, code: 'SIZE_MISMATCH', digest, bytes, message: `${bytes} bytes, ${size} expected` };
  }
  const code: VerdictCode = digest === expected ? 'OK' : 'DIGEST_MISMATCH';
  return { ok: code === 'OK', code, digest, bytes };
}

export function hashStream(task: StreamTask): Promise<Verdict> {
  const { port, algorithm, expected, size } = task;
  const progress = new Int32Array(task.progress);
  const hash = createHash(algorithm);
  let bytes = 0;
  let chunks = 0;
  return new Promise((resolve) => {
    const finish = (result: Verdict): void => {
      port.removeAllListeners();
      port.close();
      resolve(result);
    };
    const aborted = (message: string): void =>
      finish({ ok: false, code: 'ABORTED', digest: '', bytes, message });
    const hashed = (data: Uint8Array): void => {
      hash.update(data);
      bytes += data.byteLength;
      chunks++;
      // Publish progress first, then look for a waiter: with the sender doing the reverse (ask, then
      // re-read progress), one of the two always sees the other.
      Atomics.store(progress, PROGRESS, chunks);
      const wakeAt = Atomics.load(progress, WAKE_AT);
      if (wakeAt !== 0 && chunks >= wakeAt) {
        Atomics.store(progress, WAKE_AT, 0);
        port.postMessage({ hashed: chunks } satisfies ChunkAck);
      }
    };
    const shared = new Map<number, SharedArrayBuffer>();
    port.on('message', (message: StreamMessage) => {
      if (message.kind === 'share') {
        shared.set(message.index, message.buffer);
      } else if (message.kind === 'chunk') {
        const buffer = shared.get(message.shared);
        if (buffer === undefined) {
          aborted('chunk names an unknown buffer');
          return;
        }
        hashed(new Uint8Array(buffer, message.offset, message.length));
      } else if (message.kind === 'copy') {
        hashed(new Uint8Array(message.buffer));
      } else if (message.kind === 'end') {
        finish(verdict(algorithm, hash, expected, bytes, size));
      } else {
        aborted('the sender aborted the stream');
      }
    });
    // The main thread closed its end without an `end` (it crashed or dropped the request).
    port.on('close', () => aborted('the stream port closed'));
  });
}

export async function hashFile(task: FileTask): Promise<Verdict> {
  const { path, algorithm, expected, size } = task;
  const hash = createHash(algorithm);
  const rate = task.bytesPerSecond ?? 0;
  let bytes = 0;
  let file: Awaited<ReturnType<typeof open>> | undefined;
  try {
    file = await open(path, 'r');
    const buffer = Buffer.allocUnsafe(FILE_CHUNK_BYTES);
    const started = performance.now();
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
      if (rate > 0) {
        // Sleep until the bytes read so far fit the rate: a scrub never takes a core or the disk.
        const due = (bytes / rate) * 1000 - (performance.now() - started);
        if (due > 0) await sleep(due);
      }
    }
  } catch (err) {
    return { ok: false, code: 'READ_FAILED', digest: '', bytes, message: (err as Error).message };
  } finally {
    await file?.close().catch(() => undefined);
  }
  return verdict(algorithm, hash, expected, bytes, size);
}

/**
 * Run once per worker at start, so the first request pays for neither loading nor compiling. It stays busy
 * for `holdMs`, so warm tasks started together land on different workers; it returns its thread id.
 */
export async function warm(task: { holdMs: number }): Promise<number> {
  createHash('sha256').update(new Uint8Array(FILE_CHUNK_BYTES)).digest();
  await sleep(task.holdMs);
  return threadId;
}
