/** A set of listeners told that something changed; errors in one listener never reach the notifier. */
export class ChangeNotifier {
  readonly #listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The same as `subscribe`, so a notifier is a change source like any store. */
  onChange(listener: () => void): () => void {
    return this.subscribe(listener);
  }

  notify(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch {
        // A listener's failure is its own business.
      }
    }
  }
}

/** Subscribes `listener` to several change sources at once; the returned function unsubscribes from all. */
export function subscribeAll(
  listener: () => void,
  sources: ReadonlyArray<{ onChange(listener: () => void): () => void }>,
): () => void {
  const unsubscribes = sources.map((source) => source.onChange(listener));
  return () => {
    for (const unsubscribe of unsubscribes) unsubscribe();
  };
}
