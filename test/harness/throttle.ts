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
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      sent += chunk.length;
      const due = (sent / this.#bytesPerSecond) * 1000 - (Date.now() - started);
      if (due > 0) {
        upstream.pause();
        setTimeout(() => upstream.resume(), due);
      }
    });
    return undefined;
  }
}
