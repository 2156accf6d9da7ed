import uWS, { type us_listen_socket } from 'uWebSockets.js';
import { listenExclusive } from './listen.js';
import { statusLine } from './reply.js';

/** What a side route answers. */
export interface SideReply {
  status: number;
  contentType: string;
  body: string;
}

/** One route of a side server: the query string (without `?`) in, a small text reply out. */
export interface SideRoute {
  method: 'get' | 'post';
  path: string;
  handle(query: string): Promise<SideReply>;
}

/**
 * A small HTTP server on its own address, away from the registry port: the metrics endpoint, the admin
 * endpoint that only this node's own operator reaches (loopback by default), and the bootstrap `/id`.
 * Each route comes from the module that owns it (Metrics, TagInvalidator, bootstrap).
 */
export class SideServer {
  readonly #name: string;
  readonly #routes: readonly SideRoute[];
  readonly #host: string | undefined;
  readonly #requestedPort: number;
  #socket: us_listen_socket | undefined;
  #port = 0;

  constructor(
    deps: { name: string; routes: readonly SideRoute[] },
    init: { host?: string | undefined; port: number },
  ) {
    this.#name = deps.name;
    this.#routes = deps.routes;
    this.#host = init.host;
    this.#requestedPort = init.port;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    const app = uWS.App();
    for (const route of this.#routes) {
      app[route.method](route.path, (res, req) => {
        const query = req.getQuery() ?? '';
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        route.handle(query).then(
          (reply) => {
            if (aborted) return;
            res.cork(() =>
              res
                .writeStatus(statusLine(reply.status))
                .writeHeader('Content-Type', reply.contentType)
                .end(reply.body),
            );
          },
          (err: unknown) => {
            if (aborted) return;
            const message = `${this.#name} failed: ${(err as Error)?.message ?? err}\n`;
            res.cork(() => res.writeStatus(statusLine(500)).end(message));
          },
        );
      });
    }
    const known = this.#routes.map((route) => `${route.method.toUpperCase()} ${route.path}`).join(', ');
    app.any('/*', (res) => {
      res.writeStatus(statusLine(404)).end(`${this.#name} serves only ${known}\n`);
    });
    const listening = await listenExclusive(app, this.#name, this.#host, this.#requestedPort);
    this.#socket = listening.socket;
    this.#port = listening.port;
  }

  async stop(): Promise<void> {
    if (this.#socket !== undefined) uWS.us_listen_socket_close(this.#socket);
    this.#socket = undefined;
  }
}
