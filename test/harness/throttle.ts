import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy that forwards responses at most `bytesPerSecond`: a slow upstream registry, so a test can act
 * while a download is still under way.
 */
export class ThrottledProxy {
  readonly #target: { host: string; port: number };
  readonly #bytesPerSecond: number;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(target: { host: string; port: number }, bytesPerSecond: number) {
    this.#target = target;
    this.#bytesPerSecond = bytesPerSecond;
  }

  /** host:port, as a client names this "registry". */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.#target.port, this.#target.host);
      this.#sockets.add(client).add(upstream);
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
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      for (const socket of [client, upstream]) socket.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
