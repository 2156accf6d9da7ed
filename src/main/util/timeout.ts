/** Thrown by withTimeout; carries what was being waited for. */
export class TimeoutError extends Error {
  readonly code = 'TIMEOUT';
}

/**
 * Races `work` against a timer so no wait in shoal is unbounded. The timer is cleared when work settles.
 * `onTimeout` builds the error (so callers can map it to their own coded error). A plain timer, not an
 * abortable sleep: this runs once per streamed chunk, and aborting a sleep builds an AbortError each time.
 */
export function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  onTimeout: (message: string) => Error = (message) => new TimeoutError(message),
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout(`${what} did not answer within ${ms} ms`)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Resolves once `done()` holds or `deadline` (epoch ms) has passed, looking every `stepMs`. */
export async function waitUntil(done: () => boolean, deadline: number, stepMs = 50): Promise<void> {
  while (!done() && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, Math.min(stepMs, deadline - Date.now())));
}
