import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import { canonicalImageName } from '../oci/reference.js';
import type { SideRoute } from '../registry/side-server.js';
import type { PeerMessage } from '../routing/messages.js';
import type { Router } from '../routing/router.js';
import { TokenBucket } from '../util/token-bucket.js';
import type { TagBook } from './tag-book.js';

/** Where `shoal invalidate` POSTs on the node's admin address (`--admin-addr`). */
export const ADMIN_INVALIDATE_PATH = '/_shoal/v1/admin/invalidate';

/** Fresh invalidations a node passes on to its members, a second, and the burst it may save up. */
const RELAYS_PER_SECOND = 2;
const RELAY_BURST = 50;

/** What an invalidation reached. */
export interface InvalidationResult {
  name: string;
  /** The time every answer confirmed before is refused from (ms since the epoch). */
  at: number;
  /** Members this node passed it to, and how many of them took it. */
  members: number;
  told: number;
}

/**
 * Makes the whole cluster drop a tag mapping (Spegel #930: a moved tag kept being served from peers). The
 * node records the invalidation in its tag book, then tells every member it knows until each has taken it;
 * a member that hears it for the first time records it and tells every member it knows in turn, within a
 * relay allowance. So the news reaches every node connected to the one it started on within a few round
 * trips, the dedup by time ends the flood, and a flood into one node is not multiplied.
 */
export class TagInvalidator {
  readonly #book: TagBook;
  readonly #router: Router | undefined;
  readonly #log: Logger | undefined;
  readonly #timeoutMs: number;
  readonly #fanOut: number;
  readonly #retryForMs: number;
  /** Fresh invalidations this node passes on: a flood into one node is not multiplied cluster-wide. */
  readonly #relays = new TokenBucket(RELAYS_PER_SECOND, RELAY_BURST, performance.now());

  constructor(
    deps: { book: TagBook; router?: Router | undefined; log?: Logger | undefined },
    init: {
      /** Longest wait for one member's answer, in ms; default 2 s. */
      timeoutMs?: number;
      /** Members told at once; default 16. */
      fanOut?: number;
      /** How long the operator's invalidation is sent again to members that have not taken it; default 6 s (`shoal invalidate` waits 10 s). */
      retryForMs?: number;
    } = {},
  ) {
    this.#book = deps.book;
    this.#router = deps.router;
    // Taken whether or not it is news: a member that heard it first from another still took it.
    deps.router?.onMessage('tag-invalidated', async (_from, message) => {
      await this.received(message.name, message.at);
      return true;
    });
    this.#log = deps.log;
    this.#timeoutMs = init.timeoutMs ?? 2000;
    this.#fanOut = init.fanOut ?? 16;
    this.#retryForMs = init.retryForMs ?? 6000;
  }

  /** `POST ADMIN_INVALIDATE_PATH?name=<registry>/<repository>:<tag>`: the operator's endpoint. */
  route(): SideRoute {
    return {
      method: 'post',
      path: ADMIN_INVALIDATE_PATH,
      handle: async (query) => {
        let name: string;
        try {
          name = canonicalImageName(new URLSearchParams(query).get('name') ?? '');
        } catch (err) {
          return { status: 400, contentType: 'text/plain', body: `${(err as Error).message}\n` };
        }
        const result = await this.invalidate(name);
        return { status: 200, contentType: 'application/json', body: JSON.stringify(result) };
      },
    };
  }

  /**
   * The operator's invalidation: recorded here, then sent to every member, again and again (backing off
   * from 250 ms to 2 s) to those that have not taken it, until all have or `retryForMs` has passed. A
   * member that leaves meanwhile stops being waited for. Marked as the operator's, so a receiver counts it
   * against this node's operator allowance, which relays never use.
   */
  async invalidate(name: string, at = Date.now()): Promise<InvalidationResult> {
    await this.#book.invalidate(name, at);
    const deadline = performance.now() + this.#retryForMs;
    const took = new Set<string>();
    let asked = new Set<string>();
    for (let pause = 250; ; pause = Math.min(2000, pause * 2)) {
      asked = new Set([...took, ...(this.#router?.members() ?? [])]);
      const waiting = [...asked].filter((id) => !took.has(id));
      for (const id of await this.#tell(waiting, { kind: 'tag-invalidated', name, at, operator: true }))
        took.add(id);
      if (took.size === asked.size || performance.now() + pause > deadline) break;
      await sleep(pause);
    }
    const result = { name, at, members: asked.size, told: took.size };
    if (result.told < result.members) this.#log?.warn(result, 'tag invalidated; some members never took it');
    else this.#log?.info(result, 'tag invalidated');
    return result;
  }

  /**
   * A member passed an invalidation on: recorded, and passed on in turn the first time it is heard, within
   * RELAYS_PER_SECOND (beyond it, this node keeps it and the node it started on reaches the rest).
   */
  async received(name: string, at: number): Promise<boolean> {
    const news = await this.#book.invalidate(name, at, 'member');
    if (news && this.#relays.take(performance.now())) {
      const members = [...(this.#router?.members() ?? [])];
      void this.#tell(members, { kind: 'tag-invalidated', name, at }).then((took) =>
        this.#log?.info(
          { name, at, members: members.length, told: took.length },
          'tag invalidated by a peer; passed on',
        ),
      );
    }
    return news;
  }

  /** Tells each of `ids` `notice`, `fanOut` at a time; resolves with those that took it. */
  async #tell(ids: readonly string[], notice: PeerMessage): Promise<string[]> {
    const router = this.#router;
    if (router === undefined) return [];
    const queue = [...ids];
    const took: string[] = [];
    const worker = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        if (await router.tell(id, notice, AbortSignal.timeout(this.#timeoutMs))) took.push(id);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#fanOut, ids.length) }, worker));
    return took;
  }
}
