import { listenExclusive } from './listen.js';
import { statusLine } from './reply.js';
import type { TlsFiles } from './tls.js';
import uWS, { type HttpResponse, type us_listen_socket } from './uws.js';

/** Largest request body a route takes unless it says otherwise. */
const DEFAULT_MAX_BODY_BYTES = 64 << 10;
/** How far past its limit a body is read and dropped before the connection is closed instead. */
export const DISCARD_BYTES = 64 << 20;

/** The largest body `route` takes: none for a GET. */
export function bodyLimit(route: SideRoute): number {
  return route.method === 'get' ? 0 : (route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
}

/** What a side route answers. */
export interface SideReply {
  status: number;
  contentType: string;
  body: string;
  /** Headers besides Content-Type. */
  headers?: ReadonlyArray<readonly [string, string]>;
}

/** One route of a side server: the query string (without `?`) and the body in, a small reply out. */
export interface SideRoute {
  method: 'get' | 'post';
  path: string;
  /** Largest body taken (default 64 KiB); a longer one is answered 400 without reaching `handle`. */
  maxBodyBytes?: number;
  handle(query: string, body: Buffer): Promise<SideReply>;
}

/**
 * A small HTTP(S) server on its own address, away from the registry port: the metrics endpoint, the admin
 * endpoint that only this node's own operator reaches (loopback by default), the bootstrap `/id`, and the
 * admission webhook. Each route comes from the module that owns it (Metrics, TagInvalidator, bootstrap,
 * the webhook).
 */
export class SideServer {
  readonly #name: string;
  readonly #routes: readonly SideRoute[];
  readonly #host: string | undefined;
  readonly #requestedPort: number;
  readonly #tls: TlsFiles | undefined;
  #socket: us_listen_socket | undefined;
  #port = 0;

  constructor(
    deps: { name: string; routes: readonly SideRoute[] },
    init: { host?: string | undefined; port: number; tls?: TlsFiles | undefined },
  ) {
    this.#tls = init.tls;
    this.#name = deps.name;
    this.#routes = deps.routes;
    this.#host = init.host;
    this.#requestedPort = init.port;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    const tls = this.#tls;
    const app =
      tls === undefined
        ? uWS.App()
        : uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile });
    for (const route of this.#routes) {
      app[route.method](route.path, (res, req) => {
        const query = req.getQuery() ?? '';
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        const answer = (reply: SideReply, close = false): void => {
          if (aborted) return;
          aborted = true;
          res.cork(() => {
            res.writeStatus(statusLine(reply.status)).writeHeader('Content-Type', reply.contentType);
            for (const [name, value] of reply.headers ?? []) res.writeHeader(name, value);
            res.end(reply.body, close);
          });
        };
        const max = bodyLimit(route);
        readBody(res, max, (body, cut) => {
          if (body === undefined) {
            const text = `${this.#name}: request body over ${max} bytes\n`;
            answer({ status: 400, contentType: 'text/plain', body: text }, cut);
            return;
          }
          route.handle(query, body).then(answer, (err: unknown) => {
            const text = `${this.#name} failed: ${(err as Error)?.message ?? err}\n`;
            answer({ status: 500, contentType: 'text/plain', body: text });
          });
        });
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

/**
 * Collects a request body up to `max` bytes (uWS reuses each chunk's memory, so it is copied). A longer
 * body is read to its end and dropped, so that the client, still sending, can read the refusal; one more
 * than DISCARD_BYTES longer is refused at once and its connection closed. A GET's body is never read.
 */
function readBody(
  res: HttpResponse,
  max: number,
  done: (body: Buffer | undefined, cut: boolean) => void,
): void {
  if (max === 0) {
    done(Buffer.alloc(0), false);
    return;
  }
  const chunks: Buffer[] = [];
  let length = 0;
  let finished = false;
  res.onData((chunk, isLast) => {
    if (finished) return;
    length += chunk.byteLength;
    if (length > max + DISCARD_BYTES) {
      finished = true;
      done(undefined, true);
    } else if (length > max) {
      if (isLast) done(undefined, false);
    } else {
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) done(Buffer.concat(chunks, length), false);
    }
  });
}
