import uWS, { type us_listen_socket } from 'uWebSockets.js';

/** Serves `GET /metrics` (Prometheus text) on its own address, away from the registry port. */
export class MetricsServer {
  readonly #render: () => Promise<string>;
  readonly #contentType: string;
  readonly #host: string | undefined;
  readonly #requestedPort: number;
  #socket: us_listen_socket | undefined;
  #port = 0;

  constructor(
    deps: { render: () => Promise<string>; contentType: string },
    init: { host?: string | undefined; port: number },
  ) {
    this.#render = deps.render;
    this.#contentType = deps.contentType;
    this.#host = init.host;
    this.#requestedPort = init.port;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    const app = uWS.App();
    app.get('/metrics', (res) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      this.#render().then(
        (text) => {
          if (!aborted) res.cork(() => res.writeHeader('Content-Type', this.#contentType).end(text));
        },
        () => {
          if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end('metrics failed\n'));
        },
      );
    });
    app.any('/*', (res) => {
      res.writeStatus('404 Not Found').end('only /metrics here\n');
    });
    await new Promise<void>((resolve, reject) => {
      const done = (socket: us_listen_socket | false): void => {
        if (socket === false) {
          reject(new Error(`metrics cannot listen on ${this.#host ?? '*'}:${this.#requestedPort}`));
          return;
        }
        this.#socket = socket;
        this.#port = uWS.us_socket_local_port(socket);
        resolve();
      };
      if (this.#host === undefined) app.listen(this.#requestedPort, done);
      else app.listen(this.#host, this.#requestedPort, done);
    });
  }

  async stop(): Promise<void> {
    if (this.#socket !== undefined) uWS.us_listen_socket_close(this.#socket);
    this.#socket = undefined;
  }
}
