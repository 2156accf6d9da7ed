import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of `target`, on 127.0.0.1 and a free port unless `listen` names others. Subclasses decide how the bytes cross in `wire`; the
 * base opens the upstream connection, closes both sides together, and tears everything down in `stop`.
 */
export abstract class LoopbackProxy {
  readonly #target: { host: string; port: number };
  readonly #listen: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(target: { host: string; port: number }, listen: { host?: string; port?: number } = {}) {
    this.#target = target;
    this.#listen = { host: listen.host ?? '127.0.0.1', port: listen.port ?? 0 };
  }

  /** host:port, as a client names what stands behind the proxy. */
  get host(): string {
    return `${this.#listen.host}:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  /** Connects `client` and `upstream`; may return what to run when the connection closes. */
  protected abstract wire(client: Socket, upstream: Socket): (() => void) | undefined;

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.#target.port, this.#target.host);
      this.#sockets.add(client).add(upstream);
      const onClose = this.wire(client, upstream);
      const close = (): void => {
        onClose?.();
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      for (const socket of [client, upstream]) socket.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve) => server.listen(this.#listen.port, this.#listen.host, resolve));
    this.#server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
