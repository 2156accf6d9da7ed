import type { Socket } from 'node:net';
import { LoopbackProxy } from './proxy.js';

/**
 * A TCP proxy that forwards responses at most `bytesPerSecond`: a slow upstream registry, so a test can act
 * while a download is still under way.
 */
export class ThrottledProxy extends LoopbackProxy {
  readonly #bytesPerSecond: number;

  constructor(target: { host: string; port: number }, bytesPerSecond: number) {
    super(target);
    this.#bytesPerSecond = bytesPerSecond;
  }

  protected wire(client: Socket, upstream: Socket): undefined {
    client.pipe(upstream);
    const started = Date.now();
    let sent = 0;
    // Pieces of a tenth of a second's worth: a steady trickle, not a burst of a whole socket read and a
    // long silence.
    const piece = Math.max(1, Math.floor(this.#bytesPerSecond / 10));
    const queue: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = (): void => {
      timer = undefined;
      while (queue.length > 0) {
        const due = (sent / this.#bytesPerSecond) * 1000 - (Date.now() - started);
        if (due > 0) {
          timer = setTimeout(pump, due);
          return;
        }
        const head = queue[0] as Buffer;
        const part = head.subarray(0, piece);
        if (part.length === head.length) queue.shift();
        else queue[0] = head.subarray(piece);
        sent += part.length;
        if (!client.destroyed) client.write(part);
      }
      upstream.resume();
    };
    upstream.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      upstream.pause();
      if (timer === undefined) pump();
    });
    upstream.on('close', () => clearTimeout(timer));
    return undefined;
  }
}
