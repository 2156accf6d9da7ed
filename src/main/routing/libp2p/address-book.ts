import type { Multiaddr } from '@multiformats/multiaddr';
import { setBounded } from '../../util/bounded-map.js';
import type { Provider } from '../router.js';
import { registryOrigin } from './registry-address.js';

/** Peers whose identify answer is remembered (the least recently identified is forgotten first). */
const MAX_ANNOUNCED = 10_000;
/** Longest wait for a just-connected peer's identify answer (milliseconds on a live connection). */
const IDENTIFY_WAIT_MS = 1000;

/**
 * Where each peer's registry serves, from its latest identify answer and the connection that carried it
 * (worked out once there, not on every request). The peer store also merges addresses from other nodes'
 * provider records, which can still name a port from before a restart: a peer that (re)connected is not
 * handed out until its identify answer arrives (milliseconds); `settled` waits for that moment.
 */
export class AddressBook {
  readonly #announced = new Map<string, string>();
  /** Peers connected with their identify answer on the way, and who waits for it. */
  readonly #identifying = new Map<string, Set<() => void>>();
  readonly #isGone: (id: string) => boolean;

  constructor(isGone: (id: string) => boolean) {
    this.#isGone = isGone;
  }

  connected(id: string): void {
    if (!this.#announced.has(id) && !this.#identifying.has(id)) this.#identifying.set(id, new Set());
  }

  /** An identify answer belongs to the connection that carried it. */
  disconnected(id: string): void {
    this.#announced.delete(id);
    this.#settle(id);
  }

  identified(id: string, registry: string | undefined): void {
    if (registry !== undefined) setBounded(this.#announced, id, registry, MAX_ANNOUNCED);
    this.#settle(id);
  }

  /** The registry `id` announced on its current connection. */
  registryOf(id: string): string | undefined {
    return this.#announced.get(id);
  }

  /** Every peer that announced a registry. */
  ids(): IterableIterator<string> {
    return this.#announced.keys();
  }

  /** Neither gone nor (re)connected with its identify answer still on the way. */
  usable(id: string): boolean {
    return !this.#isGone(id) && !this.#identifying.has(id);
  }

  /**
   * Resolves once `id` is not waiting for its identify answer: the answer came, the connection closed, or
   * `signal` ended the wait (the caller then finds it still unusable).
   */
  async settled(id: string, signal: AbortSignal): Promise<void> {
    const waiting = this.#identifying.get(id);
    if (waiting === undefined || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        waiting.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      waiting.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Peer `id` as a provider, or undefined when it is gone or announced no registry address (a node of the
   * previous version, skipped until upgraded). Its latest identify answer says where it serves; a peer never
   * identified here is taken at the `recorded` addresses (`via` names the IP it is reached at), and the
   * request to its registry proves it alive. One whose identify answer is on the way (a lookup or a caller
   * has just dialled it) is waited for: skipped, it was the miss of a lookup whose only provider had just
   * been met.
   */
  async provider(
    id: string,
    recorded: readonly Multiaddr[],
    via: () => string | undefined,
    signal: AbortSignal,
  ): Promise<Provider | undefined> {
    if (this.#identifying.has(id))
      await this.settled(id, AbortSignal.any([signal, AbortSignal.timeout(IDENTIFY_WAIT_MS)]));
    if (!this.usable(id)) return undefined;
    const registry = this.registryOf(id) ?? registryOrigin(recorded, via());
    return registry === undefined ? undefined : { id, registry };
  }

  #settle(id: string): void {
    const waiting = this.#identifying.get(id);
    this.#identifying.delete(id);
    for (const done of waiting ?? []) done();
  }
}
