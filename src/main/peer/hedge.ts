import type { Provider } from '../routing/router.js';

export interface HedgeOptions {
  /** Most providers tried. */
  maxAttempts: number;
  /** Start another attempt when the running ones have not answered in this long (ms). */
  hedgeDelayMs: number;
  /** Longest wait for the first provider to be found (ms). */
  firstProviderTimeoutMs: number;
  signal: AbortSignal;
}

export interface Attempt<T> {
  provider: Provider;
  result: T;
}

/**
 * Races attempts against providers as they are found: one starts at once, another whenever the running
 * ones have been silent for `hedgeDelayMs` or one fails, up to `maxAttempts`. The first success wins and
 * every other attempt is aborted. Resolves undefined when no attempt succeeded (or nobody was found in
 * time): the caller answers 404 at once.
 */
export async function hedgedRace<T>(
  providers: AsyncIterable<Provider>,
  attempt: (provider: Provider, signal: AbortSignal) => Promise<T>,
  options: HedgeOptions,
): Promise<Attempt<T> | undefined> {
  const iterator = providers[Symbol.asyncIterator]();
  const controllers: AbortController[] = [];
  let running = 0;
  // Attempts begun (counted before the provider arrives, so two launches never overshoot the cap) and
  // providers actually found.
  let started = 0;
  let found = 0;
  let exhausted = false;
  let settled = false;

  return new Promise<Attempt<T> | undefined>((resolve) => {
    let hedgeTimer: NodeJS.Timeout | undefined;
    const finish = (value: Attempt<T> | undefined, winner?: AbortController): void => {
      if (settled) return;
      settled = true;
      clearTimeout(hedgeTimer);
      clearTimeout(firstTimer);
      options.signal.removeEventListener('abort', onOuterAbort);
      for (const controller of controllers) if (controller !== winner) controller.abort();
      void iterator.return?.();
      resolve(value);
    };
    const firstTimer = setTimeout(() => {
      if (found === 0) finish(undefined);
    }, options.firstProviderTimeoutMs);
    const onOuterAbort = (): void => finish(undefined);
    options.signal.addEventListener('abort', onOuterAbort, { once: true });
    if (options.signal.aborted) finish(undefined);

    const maybeDone = (): void => {
      if (!settled && running === 0 && (exhausted || started >= options.maxAttempts)) finish(undefined);
    };
    const armHedge = (): void => {
      clearTimeout(hedgeTimer);
      hedgeTimer = setTimeout(() => void launch(), options.hedgeDelayMs);
    };
    const launch = async (): Promise<void> => {
      if (settled || exhausted || started >= options.maxAttempts) return;
      // Counted as running while it waits for a provider too, so nobody declares the race lost meanwhile.
      started++;
      running++;
      let next: IteratorResult<Provider>;
      try {
        next = await iterator.next();
      } catch {
        next = { done: true, value: undefined };
      }
      if (settled) return;
      if (next.done === true) {
        started--;
        running--;
        exhausted = true;
        maybeDone();
        return;
      }
      found++;
      const controller = new AbortController();
      controllers.push(controller);
      armHedge();
      // The winner's work (a body still streaming) outlives the race, so only its own controller governs it;
      // the caller's signal ends the race, which aborts every attempt still running.
      attempt(next.value, controller.signal).then(
        (result) => finish({ provider: next.value, result }, controller),
        () => {
          running--;
          if (settled) return;
          // A failure is a reason to try the next provider now rather than after the hedge delay.
          void launch();
          maybeDone();
        },
      );
    };
    void launch();
  });
}
