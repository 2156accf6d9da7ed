import type { Logger } from '../log/logger.js';

interface Part {
  name: string;
  stop: () => unknown;
}

/**
 * The parts of a node in the order they started. Stopping runs them in reverse, so nothing is stopped
 * while a part started after it (and so maybe using it) still runs. A part that fails to stop is logged
 * and the rest still stop: a half-stopped node must not keep ports or workers alive.
 */
export class Lifecycle {
  readonly #log: Logger;
  readonly #parts: Part[] = [];

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Records a part that has started; returns it, so a start reads `x = life.started('x', await …)`. */
  started<T extends { stop(): unknown }>(name: string, part: T): T {
    this.#parts.push({ name, stop: () => part.stop() });
    return part;
  }

  /** Records how to undo something that has no object of its own. */
  onStop(name: string, stop: () => unknown): void {
    this.#parts.push({ name, stop });
  }

  /** Stops every part, latest first. Safe to call twice: the second call finds nothing left. */
  async stopAll(): Promise<void> {
    for (let part = this.#parts.pop(); part !== undefined; part = this.#parts.pop()) {
      try {
        await part.stop();
      } catch (err) {
        this.#log.error({ err, part: part.name }, 'a part failed to stop');
      }
    }
  }
}
