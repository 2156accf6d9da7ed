import { setBounded } from '../../util/bounded-map.js';

/** Peers whose identify answer is remembered (the least recently identified is forgotten first). */
const MAX_ANNOUNCED = 10_000;

/**
 * Where each peer's registry serves, from its latest identify answer and the connection that carried it
 * (worked out once there, not on every request). The peer store also merges addresses from other nodes'
 * provider records, which can still name a port from before a restart: a peer that reconnected is
 * skipped until its identify answer arrives (milliseconds).
 */
export class AddressBook {
  readonly #announced = new Map<string, string>();
  readonly #identifying = new Set<string>();
  readonly #isGone: (id: string) => boolean;

  constructor(isGone: (id: string) => boolean) {
    this.#isGone = isGone;
  }

  connected(id: string): void {
    if (!this.#announced.has(id)) this.#identifying.add(id);
  }

  /** An identify answer belongs to the connection that carried it. */
  disconnected(id: string): void {
    this.#announced.delete(id);
    this.#identifying.delete(id);
  }

  identified(id: string, registry: string | undefined): void {
    this.#identifying.delete(id);
    if (registry !== undefined) setBounded(this.#announced, id, registry, MAX_ANNOUNCED);
  }

  /** The registry `id` announced on its current connection. */
  registryOf(id: string): string | undefined {
    return this.#announced.get(id);
  }

  /** Every peer that announced a registry. */
  ids(): IterableIterator<string> {
    return this.#announced.keys();
  }

  /** Neither gone nor reconnected with its identify answer still on the way. */
  usable(id: string): boolean {
    return !this.#isGone(id) && !this.#identifying.has(id);
  }
}
