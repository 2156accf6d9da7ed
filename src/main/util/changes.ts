/** A set of listeners told that something changed; errors in one listener never reach the notifier. */
export class ChangeNotifier {
  readonly #listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
