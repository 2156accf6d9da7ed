import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import {
  type FileTask,
  type HashAlgorithm,
  PROGRESS,
  type StreamMessage,
  type StreamTask,
  WAKE_AT,
} from '../../workers/protocol.js';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { type Digest, digestAlgorithm } from '../oci/digest.js';
import { withTimeout } from '../util/timeout.js';
import type { DigestVerifier, HashSession, Verdict } from './verifier.js';

const WORKER_FILE = fileURLToPath(new URL('../../workers/hash.js', import.meta.url));

export interface VerifyPoolInit {
  /** Worker threads; default one per core less one for the main thread, at least 1 (`--verify-workers`). */
  threads?: number;
  /** Longest wait for a worker to hash one chunk or finish a check, in ms; default 30 000. */
  timeoutMs?: number;
  /** Worker entry point; tests swap in one that misbehaves. Default: src/workers/hash.js. */
  filename?: string;
}

/** Slowest rate a file check is allowed to take before its timeout, beyond any throttle asked for. */
const MIN_FILE_RATE = 20 << 20;
const WARM_HOLD_MS = 25;
const WARM_ROUNDS = 5;

function defaultVerifyThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** The piscina pool of digest workers: every hash shoal computes runs here, never on the main thread. */
export class VerifyPool implements DigestVerifier {
  readonly threads: number;
  /** Workers that ran the warm-up task at start. */
  warmThreads = 0;
  readonly #timeoutMs: number;
  readonly #filename: string;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  #pool: Piscina | undefined;
  /** Digest checks handed to the workers and not finished: waiting for a worker, or being hashed. */
  #inFlight = 0;

  constructor(deps: { log: Logger; metrics: Metrics }, init: VerifyPoolInit = {}) {
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    deps.metrics.watchVerifyQueue(() => this.#inFlight);
    this.threads = init.threads ?? defaultVerifyThreads();
    this.#timeoutMs = init.timeoutMs ?? 30_000;
    this.#filename = init.filename ?? WORKER_FILE;
  }

  /** Starts every worker and has each hash once, so the first request finds them warm. */
  async start(): Promise<void> {
    const pool = new Piscina({
      filename: this.#filename,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Stream tasks wait on their port between chunks; many share a worker.
      concurrentTasksPerWorker: 256,
    });
    // A worker that dies with no task running is replaced by piscina; say so instead of crashing.
    pool.on('error', (err: unknown) => this.#log.error({ err }, 'digest worker failed'));
    this.#pool = pool;
    const warmed = new Set<number>();
    for (let round = 0; round < WARM_ROUNDS && warmed.size < this.threads; round++) {
      const ids = await withTimeout(
        Promise.all(
          Array.from(
            { length: this.threads },
            () => pool.run({ holdMs: WARM_HOLD_MS * (round + 1) }, { name: 'warm' }) as Promise<number>,
          ),
        ),
        this.#timeoutMs,
        'digest worker start',
      );
      for (const id of ids) warmed.add(id);
    }
    this.warmThreads = warmed.size;
  }

  async stop(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
  }

  /** Workers alive now (piscina replaces one that crashed). */
  get liveThreads(): number {
    return this.#pool?.threads.length ?? 0;
  }

  session(expected: Digest, size: number): HashSession {
    const { port1, port2 } = new MessageChannel();
    const progress = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
    const task: StreamTask = { port: port2, algorithm: algorithmOf(expected), expected, size, progress };
    const result = this.#run<Verdict>(task, 'hashStream', [port2]).then((verdict) =>
      this.#count('stream', verdict),
    );
    return new StreamSession(port1, progress, result, this.#timeoutMs);
  }

  async verifyFile(
    path: string,
    expected: Digest,
    size: number,
    opts: { bytesPerSecond?: number } = {},
  ): Promise<Verdict> {
    const rate = opts.bytesPerSecond ?? 0;
    const task: FileTask = { path, algorithm: algorithmOf(expected), expected, size, bytesPerSecond: rate };
    const slowest = rate > 0 ? Math.min(rate, MIN_FILE_RATE) : MIN_FILE_RATE;
    const timeoutMs = this.#timeoutMs + (size / slowest) * 1000;
    const verdict = await withTimeout(
      this.#run<Verdict>(task, 'hashFile'),
      timeoutMs,
      'file digest check',
      unavailable,
    );
    return this.#count('file', verdict);
  }

  #run<R>(task: unknown, name: string, transferList?: MessagePort[]): Promise<R> {
    const pool = this.#pool;
    if (pool === undefined)
      return Promise.reject(new StoreUnavailableError('the digest workers are stopped'));
    const options = transferList === undefined ? { name } : { name, transferList };
    this.#inFlight++;
    return (pool.run(task, options) as Promise<R>)
      .catch((cause: unknown) => {
        throw new StoreUnavailableError(`digest worker failed: ${(cause as Error).message}`, { cause });
      })
      .finally(() => this.#inFlight--);
  }

  #count(kind: string, verdict: Verdict): Verdict {
    this.#metrics.verifications.inc({ kind, result: verdict.code });
    this.#metrics.verifiedBytes.inc({ kind }, verdict.bytes);
    return verdict;
  }
}

function algorithmOf(digest: Digest): HashAlgorithm {
  return digestAlgorithm(digest) as HashAlgorithm;
}

const unavailable = (message: string): Error => new StoreUnavailableError(message);

interface Waiter {
  /** Chunks that must be hashed. */
  count: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The main-thread side of one hashStream task. Progress is read from shared memory; the worker sends a
 * message only when this side has asked to be woken, which with read-ahead is almost never.
 */
class StreamSession implements HashSession {
  readonly #port: MessagePort;
  readonly #progress: Int32Array;
  readonly #result: Promise<Verdict>;
  readonly #timeoutMs: number;
  #waiters: Waiter[] = [];
  /** Shared buffers already sent to the worker, by the index chunks name them with. */
  readonly #shared = new Map<SharedArrayBuffer, number>();
  #seq = 0;
  #failure: Error | undefined;
  #closed = false;

  constructor(port: MessagePort, progress: SharedArrayBuffer, result: Promise<Verdict>, timeoutMs: number) {
    this.#port = port;
    this.#progress = new Int32Array(progress);
    this.#result = result;
    this.#timeoutMs = timeoutMs;
    port.on('message', () => this.#wake());
    // A worker that crashed rejects the task: fail every chunk still waiting instead of hanging.
    result.then(
      () => this.#failAll(new StoreUnavailableError('the digest worker ended the session early')),
      (err: Error) => this.#failAll(err),
    );
  }

  update(chunk: Buffer): number {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closed) throw new StoreUnavailableError('the digest session is closed');
    const seq = this.#seq++;
    if (chunk.buffer instanceof SharedArrayBuffer) {
      let shared = this.#shared.get(chunk.buffer);
      if (shared === undefined) {
        shared = this.#shared.size;
        this.#shared.set(chunk.buffer, shared);
        this.#post({ kind: 'share', index: shared, buffer: chunk.buffer });
      }
      this.#post({ kind: 'chunk', shared, offset: chunk.byteOffset, length: chunk.length });
      return seq;
    }
    // Memory the worker cannot share: hand it a private copy, so the caller's buffer is free at once.
    const copy = new ArrayBuffer(chunk.length);
    new Uint8Array(copy).set(chunk);
    this.#post({ kind: 'copy', buffer: copy }, [copy]);
    return seq;
  }

  hashed(seq: number): Promise<void> {
    const count = seq + 1;
    if (Atomics.load(this.#progress, PROGRESS) >= count) return Promise.resolve();
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((other) => other !== waiter);
          reject(
            new StoreUnavailableError(`the digest worker did not hash a chunk within ${this.#timeoutMs} ms`),
          );
        }, this.#timeoutMs),
      };
      this.#waiters.push(waiter);
      this.#wake();
    });
  }

  async finish(): Promise<Verdict> {
    if (this.#failure !== undefined) throw this.#failure;
    this.#post({ kind: 'end' });
    this.#closed = true;
    try {
      return await withTimeout(this.#result, this.#timeoutMs, 'digest check', unavailable);
    } finally {
      this.#port.close();
    }
  }

  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#post({ kind: 'abort' });
    this.#port.close();
    this.#result.catch(() => undefined);
  }

  #post(message: StreamMessage, transfer: ArrayBuffer[] = []): void {
    this.#port.postMessage(message, transfer);
  }

  /** Settles the waiters whose chunks are hashed, and asks the worker to wake us for the next one. */
  #wake(): void {
    for (;;) {
      const done = Atomics.load(this.#progress, PROGRESS);
      const ready = this.#waiters.filter((waiter) => waiter.count <= done);
      this.#waiters = this.#waiters.filter((waiter) => waiter.count > done);
      for (const waiter of ready) {
        clearTimeout(waiter.timer);
        waiter.resolve();
      }
      if (this.#waiters.length === 0) return;
      const next = Math.min(...this.#waiters.map((waiter) => waiter.count));
      // Ask first, then read progress again: the worker publishes progress first, then reads the ask.
      Atomics.store(this.#progress, WAKE_AT, next);
      if (Atomics.load(this.#progress, PROGRESS) < next) return;
    }
  }

  #failAll(err: Error): void {
    this.#failure ??= err;
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
    this.#waiters = [];
  }
}
