import type { Logger } from '../../log/logger.js';
import { dialAll, type Libp2pRouterInit, type Node } from './node.js';

/**
 * Joining the cluster, and joining it again: dials what the bootstrap names, and while the node is cut off
 * (no live connection, or an empty table) dials it again, backing off while that fails. Remembers whether
 * the latest bootstrap named any node but this one (a cluster of one).
 */
export class Joining {
  readonly #node: Node;
  readonly #init: Libp2pRouterInit;
  readonly #log: Logger;
  readonly #connected: () => boolean;
  #timer: NodeJS.Timeout | undefined;
  #backoff = 1;
  #stopped = false;
  /** The latest bootstrap answered, and named no node but this one. */
  alone = false;

  constructor(node: Node, init: Libp2pRouterInit, log: Logger, connected: () => boolean) {
    this.#node = node;
    this.#init = init;
    this.#log = log;
    this.#connected = connected;
  }

  /** Bootstraps once, then watches for the node being cut off. */
  async start(): Promise<void> {
    await this.#bootstrap();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #bootstrap(): Promise<void> {
    const entries = await (this.#init.bootstrap ?? (async () => []))().catch((err: unknown) => {
      this.#log.warn({ err }, 'bootstrap source failed');
    });
    const others = await dialAll(this.#node, entries ?? [], this.#init.peerTimeoutMs ?? 1000, this.#log);
    if (others === 0 && entries !== undefined && !this.alone)
      this.#log.info({ entries: entries.length }, 'bootstrap names no other node: a cluster of one');
    this.alone = others === 0 && entries !== undefined;
  }

  #schedule(): void {
    const base = this.#init.rebootstrapMs ?? 1000;
    this.#timer = setTimeout(async () => {
      if (this.#stopped) return;
      if (this.#connected()) this.#backoff = 1;
      else await this.#bootstrap().then(() => (this.#backoff = Math.min(this.#backoff * 2, 8)));
      this.#schedule();
    }, base * this.#backoff);
    this.#timer.unref();
  }
}
