import type { Verdict } from '../../workers/protocol.js';
import type { Digest } from '../oci/digest.js';

export type { Verdict, VerdictCode } from '../../workers/protocol.js';

/**
 * One streaming digest check. Chunks are hashed in order by a worker while the caller goes on (forwarding
 * them to a client); `finish` gives the verdict once every chunk is hashed.
 */
export interface HashSession {
  /**
   * Queues `chunk` and returns its sequence number. A chunk in shared memory is read in place: the caller
   * must not refill it before `hashed` of that number resolves. Other chunks are copied first. Throws when
   * the session already failed or ended.
   */
  update(chunk: Buffer): number;
  /** Resolves once chunk `seq` (and every one before it) is hashed; rejects if the worker failed or stalled. */
  hashed(seq: number): Promise<void>;
  /** Resolves the verdict once every queued chunk is hashed. */
  finish(): Promise<Verdict>;
  /** Gives up; the worker drops the session. Safe after finish. */
  abort(): void;
}

/** Checks content against its digest off the main thread. */
export interface DigestVerifier {
  session(expected: Digest, size: number): HashSession;
  /** Hashes a whole file; `bytesPerSecond` throttles background scrubs. */
  verifyFile(
    path: string,
    expected: Digest,
    size: number,
    opts?: { bytesPerSecond?: number },
  ): Promise<Verdict>;
}
