import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { bodyLimit, DISCARD_BYTES, type SideReply, type SideRoute } from '../registry/side-server.js';
import type { TlsPair } from '../registry/tls.js';

/** Longest a client may take to send one whole request; the API server sends a review at once. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * The webhook's HTTPS listener. node:https, not uWS, for one thing uWS cannot do: take a new certificate
 * while it listens (`setSecureContext`), so a renewed certificate is served from the next handshake on,
 * with no restart and no moment without a listener. The API server is its only client, a few requests
 * per pod created; the routes and their limits are the side servers' own (SideRoute).
 */
export class WebhookHttpsServer {
  readonly #name: string;
  readonly #routes: readonly SideRoute[];
  readonly #server: Server;

  constructor(deps: { name: string; routes: readonly SideRoute[] }, tls: TlsPair) {
    this.#name = deps.name;
    this.#routes = deps.routes;
    this.#server = createServer(
      { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', requestTimeout: REQUEST_TIMEOUT_MS },
      (req, res) => this.#serve(req, res),
    );
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Serves `tls` from the next handshake on; connections already open keep the one they began with. */
  setCertificate(tls: TlsPair): void {
    this.#server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
  }

  listen(host: string | undefined, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port, exclusive: true }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const [path = '', query = ''] = (req.url ?? '').split('?', 2);
    const route = this.#routes.find(
      (each) => each.method === req.method?.toLowerCase() && each.path === path,
    );
    if (route === undefined) {
      const known = this.#routes.map((each) => `${each.method.toUpperCase()} ${each.path}`).join(', ');
      req.resume();
      send(res, { status: 404, contentType: 'text/plain', body: `${this.#name} serves only ${known}\n` });
      return;
    }
    const max = bodyLimit(route);
    readBody(req, max, (body) => {
      if (body === undefined) {
        send(res, {
          status: 400,
          contentType: 'text/plain',
          body: `${this.#name}: request body over ${max} bytes\n`,
        });
        return;
      }
      route.handle(query, body).then(
        (reply) => send(res, reply),
        (err: unknown) =>
          send(res, {
            status: 500,
            contentType: 'text/plain',
            body: `${this.#name} failed: ${(err as Error)?.message ?? err}\n`,
          }),
      );
    });
  }
}

function send(res: ServerResponse, reply: SideReply): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(reply.status, [['Content-Type', reply.contentType], ...(reply.headers ?? [])].flat());
  res.end(reply.body);
}

/**
 * Collects a body of at most `max` bytes. A longer one is read to its end and dropped, so the client, still
 * sending, can read the refusal; one more than DISCARD_BYTES longer has its connection closed.
 */
function readBody(req: IncomingMessage, max: number, done: (body: Buffer | undefined) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  req.on('data', (chunk: Buffer) => {
    length += chunk.length;
    if (length > max + DISCARD_BYTES) req.destroy();
    else if (length <= max) chunks.push(chunk);
  });
  req.on('end', () => done(length > max ? undefined : Buffer.concat(chunks, length)));
  req.on('error', () => undefined);
}
