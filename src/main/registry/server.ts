import uWS, { type HttpRequest, type HttpResponse, type us_listen_socket } from 'uWebSockets.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { setBounded } from '../util/bounded-map.js';
import { waitUntil } from '../util/timeout.js';
import { answer, type CapturedRequest, captureClaims, limitsOf, type RequestLimits } from './answer.js';
import { BufferPool } from './buffer-pool.js';
import type { PullHandler } from './handler.js';
import { listenExclusive } from './listen.js';
import { ByteRateLimiter } from './rate-limit.js';
import { errorReply, type FullReply, type Reply, statusLine } from './reply.js';
import { type Connection, ParkBudget, StallWatch, type StreamContext, streamBody } from './stream.js';
import type { TlsFiles } from './tls.js';

export interface RegistryServerInit {
  /** Interface to bind; undefined binds every interface. */
  host?: string | undefined;
  /** Port; 0 picks a free one (see `port` after start). */
  port: number;
  /** Bytes per streaming buffer; default 1 MiB. */
  chunkBytes?: number;
  /** Streaming buffers in the pool; default 64. */
  buffers?: number;
  /** Longest wait for a pool buffer or one store read, in ms; default 5000. */
  timeoutMs?: number;
  /** Longest request target accepted; default 4096 bytes. */
  maxUrlBytes?: number;
  /** Largest total of request headers accepted; default 16 KiB. */
  maxHeaderBytes?: number;
  /** Bytes per second this node streams to each member (peer requests it proved); 0 (default) is unlimited. */
  peerUploadRate?: number;
  /** Bytes slow readers may hold outside the pool, all together; default 4 × the pool. */
  parkedBytes?: number;
  /** Longest a blob reader may take no bytes before it is cut, in ms; default 30 s (`--idle-timeout`). */
  idleTimeoutMs?: number;
  /** A second listener, over TLS, for the same API (`--registry-tls-*`). */
  tls?: (TlsFiles & { host?: string | undefined; port: number }) | undefined;
}

/** The uWebSockets.js HTTP server: copies each request out, asks the handler, writes the reply. */
export class RegistryServer {
  readonly #handler: PullHandler;
  readonly #log: Logger;
  readonly #init: RegistryServerInit;
  readonly #pool: BufferPool;
  readonly #timeoutMs: number;
  readonly #limits: RequestLimits;
  readonly #peerRate: number;
  /** One bucket per member that pulled lately (the least recent is forgotten past MAX_LIMITED_MEMBERS). */
  readonly #peerLimiters = new Map<string, ByteRateLimiter>();
  readonly #stalls: StallWatch;
  readonly #park: ParkBudget;
  /** Every response not yet finished, so a drain can wait for them and then cut what remains. */
  readonly #open = new Map<HttpResponse, Connection>();
  #listenSocket: us_listen_socket | undefined;
  #tlsSocket: us_listen_socket | undefined;
  #port = 0;
  #tlsPort = 0;

  readonly #metrics: Metrics | undefined;

  constructor(deps: { handler: PullHandler; log: Logger; metrics?: Metrics }, init: RegistryServerInit) {
    this.#metrics = deps.metrics;
    this.#handler = deps.handler;
    this.#log = deps.log;
    this.#init = init;
    this.#pool = new BufferPool({ bufferSize: init.chunkBytes ?? 1 << 20, count: init.buffers ?? 64 });
    this.#timeoutMs = init.timeoutMs ?? 5000;
    this.#limits = limitsOf(init);
    this.#peerRate = init.peerUploadRate ?? 0;
    this.#stalls = new StallWatch(init.idleTimeoutMs ?? 30_000, () => deps.metrics?.streamsStalled.inc({}));
    this.#park = new ParkBudget(init.parkedBytes ?? 4 * this.#pool.bufferSize * (init.buffers ?? 64));
    const park = this.#park;
    deps.metrics?.watchParked(
      () => park.streams,
      () => park.used,
    );
  }

  /** Responses in flight (a blob streaming, or an answer being worked out). */
  get inFlight(): number {
    return this.#open.size;
  }

  /** The bound port, once started. */
  get port(): number {
    return this.#port;
  }

  /** The bound port of the TLS listener, once started; 0 without one. */
  get tlsPort(): number {
    return this.#tlsPort;
  }

  async start(): Promise<void> {
    const app = uWS.App();
    app.any('/*', (res, req) => this.#accept(res, req));
    const { host, port, tls } = this.#init;
    const listening = await listenExclusive(app, 'registry', host, port);
    this.#listenSocket = listening.socket;
    this.#port = listening.port;
    if (tls === undefined) return;
    // The same handler and buffers behind both listeners: one place sees every request.
    const secure = uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile });
    secure.any('/*', (res, req) => this.#accept(res, req));
    try {
      const listeningTls = await listenExclusive(secure, 'registry (TLS)', tls.host, tls.port);
      this.#tlsSocket = listeningTls.socket;
      this.#tlsPort = listeningTls.port;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * Stops accepting connections, lets every response in flight finish until `deadline` (epoch ms), then
   * cuts what remains. Returns how many responses were cut.
   */
  async drain(deadline: number): Promise<number> {
    await this.stop();
    await waitUntil(() => this.#open.size === 0, deadline);
    let cut = 0;
    for (const [res, connection] of this.#open) {
      if (connection.aborted) continue;
      cut++;
      res.close();
    }
    return cut;
  }

  /** Stops accepting connections; responses in flight go on. */
  async stop(): Promise<void> {
    for (const socket of [this.#listenSocket, this.#tlsSocket])
      if (socket !== undefined) uWS.us_listen_socket_close(socket);
    this.#listenSocket = undefined;
    this.#tlsSocket = undefined;
  }

  /** The upload budget of `member`; undefined when uploads are unlimited. */
  #limiterOf(member: string): ByteRateLimiter | undefined {
    if (this.#peerRate <= 0) return undefined;
    const limiter = this.#peerLimiters.get(member) ?? new ByteRateLimiter(this.#peerRate);
    setBounded(this.#peerLimiters, member, limiter, MAX_LIMITED_MEMBERS);
    return limiter;
  }

  #accept(res: HttpResponse, req: HttpRequest): void {
    // uWS request objects die at the first await: copy everything now.
    const gone = new AbortController();
    const request: CapturedRequest = { ...capture(req), signal: gone.signal };
    const connection: Connection = { aborted: false, onAbort: undefined };
    res.onAborted(() => {
      connection.aborted = true;
      connection.onAbort?.();
      gone.abort();
    });
    this.#open.set(res, connection);
    this.#serve(res, request, connection)
      .catch((err: unknown) => {
        // Only a bug gets here (handler errors become replies); never let it become an unhandled rejection.
        this.#log.error({ err, path: request.path }, 'request handling crashed');
        if (!connection.aborted) res.close();
      })
      .finally(() => this.#open.delete(res));
  }

  async #serve(res: HttpResponse, request: CapturedRequest, connection: Connection): Promise<void> {
    const reply = await answer(this.#handler, request, this.#limits, this.#log);
    if (reply.kind === 'full') {
      if (!connection.aborted) res.cork(() => writeFull(res, reply));
      return;
    }
    await this.#stream(res, request, reply, connection);
  }

  async #stream(
    res: HttpResponse,
    request: CapturedRequest,
    reply: Extract<Reply, { kind: 'stream' }>,
    connection: Connection,
  ): Promise<void> {
    let buffers: Buffer[] | undefined;
    const asked = performance.now();
    try {
      buffers = await this.#pool.acquire(reply.length > this.#pool.bufferSize ? 2 : 1, this.#timeoutMs);
      this.#metrics?.bufferWait.observe((performance.now() - asked) / 1000);
    } catch (err) {
      this.#metrics?.bufferWait.observe((performance.now() - asked) / 1000);
      await reply.reader.close();
      if (!connection.aborted) res.cork(() => writeFull(res, errorReply(err, false)));
      return;
    }
    try {
      if (connection.aborted) return;
      res.cork(() => writeHead(res, reply.status, reply.headers, false));
      const context: StreamContext = {
        pool: this.#pool,
        timeoutMs: this.#timeoutMs,
        stalls: this.#stalls,
        park: this.#park,
        limiter: reply.member === undefined ? undefined : this.#limiterOf(reply.member),
      };
      // streamBody gives the buffers back (early, when the client turns out slow).
      const lent = buffers;
      buffers = undefined;
      await streamBody(res, reply.reader, lent, reply.length, connection, context);
    } catch (err) {
      // Status and part of the body are out: the only honest signal left is cutting the connection.
      this.#log.error({ err, path: request.path }, 'blob stream failed; closing connection');
      if (!connection.aborted) res.close();
    } finally {
      if (buffers !== undefined) this.#pool.release(buffers);
      await reply.reader.close().catch(() => undefined);
    }
  }
}

const MAX_LIMITED_MEMBERS = 4096;

function capture(req: HttpRequest): CapturedRequest {
  const path = req.getUrl();
  const query = req.getQuery() ?? '';
  let headerBytes = 0;
  // Go clients (podman, skopeo) send one Accept line per media type; getHeader would see only the first.
  const accepts: string[] = [];
  req.forEach((key, value) => {
    headerBytes += key.length + value.length + 4;
    if (key === 'accept') accepts.push(value);
  });
  const range = req.getHeader('range');
  const accept = accepts.join(', ');
  return {
    ...captureClaims((name) => req.getHeader(name)),
    method: req.getMethod().toUpperCase(),
    path,
    query,
    range: range === '' ? undefined : range,
    accept: accept === '' ? undefined : accept,
    urlBytes: path.length + query.length + 1,
    headerBytes,
  };
}

/** Writes status and headers. Content-Length is written by hand only for bodiless replies: uWS adds its own. */
function writeHead(res: HttpResponse, status: number, headers: Reply['headers'], bodiless: boolean): void {
  res.writeStatus(statusLine(status));
  for (const [name, value] of headers) {
    if (!bodiless && name === 'Content-Length') continue;
    res.writeHeader(name, value);
  }
}

function writeFull(res: HttpResponse, reply: FullReply): void {
  writeHead(res, reply.status, reply.headers, reply.body === undefined);
  // endWithoutBody(length) crashes this uWS build; the bare call keeps our Content-Length header.
  if (reply.body === undefined) res.endWithoutBody();
  else res.end(reply.body);
}
