import type { Logger } from '../log/logger.js';
import { canonicalImageName } from '../oci/reference.js';
import type { SideRoute } from '../registry/side-server.js';
import type { Router } from '../routing/router.js';
import type { TagBook } from './tag-book.js';

/** Where `shoal invalidate` POSTs on the node's admin address (`--admin-addr`). */
export const ADMIN_INVALIDATE_PATH = '/_shoal/v1/admin/invalidate';

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
 * node records the invalidation in its tag book, then tells every member it knows; a member that hears it
 * for the first time records it and tells every member it knows in turn. So the news reaches every node
 * connected to the one it started on within a few round trips, and the dedup by time ends the flood.
 */
export class TagInvalidator {
  readonly #book: TagBook;
  readonly #router: Router | undefined;
  readonly #log: Logger | undefined;
  readonly #timeoutMs: number;
  readonly #fanOut: number;

  constructor(
    deps: { book: TagBook; router?: Router | undefined; log?: Logger | undefined },
    init: {
      /** Longest wait for one member's answer, in ms; default 2 s. */
      timeoutMs?: number;
      /** Members told at once; default 16. */
      fanOut?: number;
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

  /** The operator's invalidation: recorded here, then passed to every member before it resolves. */
  async invalidate(name: string, at = Date.now()): Promise<InvalidationResult> {
    await this.#book.invalidate(name, at);
    const { members, told } = await this.#broadcast(name, at);
    this.#log?.info({ name, at, members, told }, 'tag invalidated');
    return { name, at, members, told };
  }

  /** A member passed an invalidation on: recorded, and passed on in turn the first time it is heard. */
  async received(name: string, at: number): Promise<boolean> {
    const news = await this.#book.invalidate(name, at, 'member');
    if (news) {
      void this.#broadcast(name, at).then(({ members, told }) =>
        this.#log?.info({ name, at, members, told }, 'tag invalidated by a peer; passed on'),
      );
    }
    return news;
  }

  async #broadcast(name: string, at: number): Promise<{ members: number; told: number }> {
    const router = this.#router;
    if (router === undefined) return { members: 0, told: 0 };
    const queue = [...router.members()];
    const members = queue.length;
    let told = 0;
    const worker = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        const notice = { kind: 'tag-invalidated', name, at } as const;
        if (await router.tell(id, notice, AbortSignal.timeout(this.#timeoutMs))) told++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#fanOut, members) }, worker));
    return { members, told };
  }
}
