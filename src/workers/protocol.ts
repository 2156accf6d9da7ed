/**
 * The messages and results shared by the digest workers and the pool in src/main/verify. Workers return
 * verdicts as values (`ok` plus a stable `code`) instead of throwing across threads.
 */
import type { MessagePort } from 'node:worker_threads';

/** Hash algorithms a digest may name (the OCI registered algorithms). */
export type HashAlgorithm = 'sha256' | 'sha512';

export type VerdictCode =
  /** The content hashes to the expected digest and has the expected size. */
  | 'OK'
  /** The content hashes to something else. */
  | 'DIGEST_MISMATCH'
  /** Fewer or more bytes than expected (a truncated file or stream). */
  | 'SIZE_MISMATCH'
  /** The content could not be read (a file vanished, a read failed). */
  | 'READ_FAILED'
  /** The sender gave up on the stream before its end. */
  | 'ABORTED';

export interface Verdict {
  ok: boolean;
  code: VerdictCode;
  /** The digest the content really has (`algorithm:hex`), or '' when it was not read to the end. */
  digest: string;
  /** Bytes hashed. */
  bytes: number;
  /** Why, when not ok and a reason beyond the code is known. */
  message?: string;
}

/** Hashes a stream of chunks sent through `port` (see StreamMessage); resolves its verdict. */
export interface StreamTask {
  port: MessagePort;
  algorithm: HashAlgorithm;
  expected: string;
  size: number;
  /**
   * Two Int32 slots shared with the sender: [PROGRESS] counts the chunks hashed so far, and [WAKE_AT], when
   * not 0, asks for a ChunkAck once that many are hashed. The sender reads progress itself and asks to be
   * woken only when it must wait, so most chunks cost no message back.
   */
  progress: SharedArrayBuffer;
}

export const PROGRESS = 0;
export const WAKE_AT = 1;

/**
 * From the main thread to a stream task, in order. A `chunk` names shared memory the worker reads in place
 * (the sender does not touch it until progress shows it hashed); a `copy` carries a buffer transferred
 * outright.
 * A shared buffer is sent once (`share`) and named by its index after that: cloning a SharedArrayBuffer
 * into another thread costs far more than the numbers of a chunk.
 */
export type StreamMessage =
  | { kind: 'share'; index: number; buffer: SharedArrayBuffer }
  | { kind: 'chunk'; shared: number; offset: number; length: number }
  | { kind: 'copy'; buffer: ArrayBuffer }
  | { kind: 'end' }
  | { kind: 'abort' };

/** From a stream task back to the main thread: `hashed` chunks are done and their memory is free. */
export interface ChunkAck {
  hashed: number;
}

/** Hashes a file (or its first `size` bytes must be all of it), at most `bytesPerSecond` when set. */
export interface FileTask {
  path: string;
  algorithm: HashAlgorithm;
  expected: string;
  size: number;
  /** Throttle for background scrubs; 0 or absent is unthrottled. */
  bytesPerSecond?: number;
}
