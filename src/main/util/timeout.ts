import { setTimeout as sleep } from 'node:timers/promises';

/** Thrown by withTimeout; carries what was being waited for. */
export class TimeoutError extends Error {
  readonly code = 'TIMEOUT';
}

/**
 * Races `work` against a timer so no wait in shoal is unbounded. The timer is cleared when work settles.
 * `onTimeout` builds the error (so callers can map it to their own coded error).
 */
export async function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  onTimeout: (message: string) => Error = (message) => new TimeoutError(message),
): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      work,
      sleep(ms, undefined, { signal: timer.signal }).then(() => {
        throw onTimeout(`${what} did not answer within ${ms} ms`);
      }),
    ]);
  } finally {
    timer.abort();
  }
}
