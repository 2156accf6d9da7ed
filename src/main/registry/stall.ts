// The stall watch: what keeps a response that waits on a slow client moving, and cuts one that stopped.

/** A response waiting on its client, as the watch sees it. */
export interface Pumped {
  /** Offers the pending bytes again, or cuts the response if its client took nothing for `idleMs`. */
  pump(now: number, idleMs: number): StalledResponse | undefined;
}

/**
 * Watches every response that waits for its client to take bytes. uWS (this build) cuts a response
 * 10 s after a write stalls, whatever the client does next, and Linux signals a slow socket writable only
 * once much of its send buffer has drained, which a reader at 50 KB/s may take longer than 10 s to do.
 * So every tick each waiting response is offered its pending bytes again: that sends what the socket
 * takes now and re-arms uWS's timer. A response whose client took no byte for `idleMs` is cut.
 */
export class StallWatch {
  readonly idleMs: number;
  readonly #tickMs: number;
  readonly #writers = new Set<Pumped>();
  #timer: NodeJS.Timeout | undefined;

  readonly #onStall: (cut: StalledResponse) => void;

  constructor(idleMs: number, onStall: (cut: StalledResponse) => void = () => undefined) {
    this.idleMs = idleMs;
    this.#onStall = onStall;
    // uWS's timer fires 10–14 s after it is armed; re-arming every 2 s keeps well inside that.
    this.#tickMs = Math.max(50, Math.min(2000, Math.floor(idleMs / 4)));
  }

  /** Responses now waiting on their client. */
  get waiting(): number {
    return this.#writers.size;
  }

  watch(writer: Pumped): void {
    this.#writers.add(writer);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
      this.#timer.unref();
    }
  }

  unwatch(writer: Pumped): void {
    this.#writers.delete(writer);
    if (this.#writers.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    const now = Date.now();
    for (const writer of [...this.#writers]) {
      const cut = writer.pump(now, this.idleMs);
      if (cut !== undefined) this.#onStall(cut);
    }
  }
}

/** A response the stall watch cut: how far it had got, and when its client last took a byte. */
export type StalledResponse = {
  sent: number;
  total: number;
  idleMs: number;
};
