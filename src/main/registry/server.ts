import { BlobUnknownError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { waitUntil } from '../util/timeout.js';
import { answer, type CapturedRequest, limitsOf, type RequestLimits } from './answer.js';
import { BufferPool } from './buffer-pool.js';
import type { PullHandler } from './handler.js';
import type { Ending, OpenRequest, RequestLedger } from './ledger.js';
import { listenExclusive } from './listen.js';
import { ParkBudget } from './park.js';
import { MemberRateLimits } from './rate-limit.js';
import { errorReply, type Reply } from './reply.js';
import { StallWatch } from './stall.js';
import { type Connection, type StreamContext, streamBody, streamEnding } from './stream.js';
import type { TlsFiles } from './tls.js';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.js';
import { capture, writeFull, writeHead } from './uws-io.js';

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
  readonly #uploads: MemberRateLimits;
  readonly #stalls: StallWatch;
  readonly #park: ParkBudget;
  /** Every response not yet finished, so a drain can wait for them and then cut what remains. */
  readonly #open = new Map<HttpResponse, Connection>();
  #listenSocket: us_listen_socket | undefined;
  #tlsSocket: us_listen_socket | undefined;
  /** The uWS apps behind the listeners, to close their connections. */
  readonly #apps: TemplatedApp[] = [];
  #port = 0;
  #tlsPort = 0;
  readonly #metrics: Metrics | undefined;
  readonly #ledger: RequestLedger | undefined;

  constructor(
    deps: {
      handler: PullHandler;
      log: Logger;
      metrics?: Metrics;
      /** Counts every request; absent, nothing is counted (`--request-metrics=false`). */
      ledger?: RequestLedger | undefined;
    },
    init: RegistryServerInit,
  ) {
    this.#metrics = deps.metrics;
    this.#ledger = deps.ledger;
    this.#handler = deps.handler;
    this.#log = deps.log;
    this.#init = init;
    this.#pool = new BufferPool({ bufferSize: init.chunkBytes ?? 1 << 20, count: init.buffers ?? 64 });
    this.#timeoutMs = init.timeoutMs ?? 5000;
    this.#limits = limitsOf(init);
    this.#uploads = new MemberRateLimits(init.peerUploadRate ?? 0);
    this.#stalls = new StallWatch(init.idleTimeoutMs ?? 30_000, (cut) => {
      deps.metrics?.streamsStalled.inc({});
      this.#log.warn(cut, 'cut a blob response: its client took no byte for --idle-timeout');
    });
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
    this.#apps.push(app);
    app.any('/*', (res, req) => this.#accept(res, req));
    const { host, port, tls } = this.#init;
    const listening = await listenExclusive(app, 'registry', host, port);
    this.#listenSocket = listening.socket;
    this.#port = listening.port;
    if (tls === undefined) return;
    // The same handler and buffers behind both listeners: one place sees every request.
    const secure = uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile });
    this.#apps.push(secure);
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
    this.close();
    return cut;
  }

  /** Closes every connection, idle keep-alive ones too (left open, they hold the process for seconds). */
  close(): void {
    for (const app of this.#apps.splice(0)) app.close();
  }

  /** Stops accepting connections; responses in flight go on. */
  async stop(): Promise<void> {
    for (const socket of [this.#listenSocket, this.#tlsSocket])
      if (socket !== undefined) uWS.us_listen_socket_close(socket);
    this.#listenSocket = undefined;
    this.#tlsSocket = undefined;
  }

  #accept(res: HttpResponse, req: HttpRequest): void {
    // uWS request objects die at the first await: copy everything now.
    const gone = new AbortController();
    const counted = this.#ledger?.begin();
    const request: CapturedRequest = { ...capture(req), signal: gone.signal, trace: counted?.trace };
    const connection: Connection = { aborted: false, onAbort: undefined };
    res.onAborted(() => {
      connection.aborted = true;
      connection.onAbort?.();
      gone.abort();
    });
    this.#open.set(res, connection);
    const ending = { method: request.method, status: 0, bytes: 0, cut: true };
    this.#serve(res, request, connection, counted, ending)
      .catch((err: unknown) => {
        // Only a bug gets here (handler errors become replies); never let it become an unhandled rejection.
        this.#log.error({ err, path: request.path }, 'request handling crashed');
        if (!connection.aborted) res.close();
      })
      .finally(() => {
        this.#open.delete(res);
        counted?.end(ending);
      });
  }

  /** Answers one request; `ending` is filled in as it goes (status, bytes, and whether it was complete). */
  async #serve(
    res: HttpResponse,
    request: CapturedRequest,
    connection: Connection,
    counted: OpenRequest | undefined,
    ending: Omit<Ending, 'method'>,
  ): Promise<void> {
    const reply = await answer(this.#handler, request, this.#limits, this.#log);
    ending.status = reply.status;
    if (reply.kind === 'full') {
      if (connection.aborted) return;
      counted?.firstByte();
      res.cork(() => writeFull(res, reply));
      ending.bytes = reply.body?.length ?? 0;
      ending.cut = false;
      return;
    }
    Object.assign(ending, await this.#stream(res, request, reply, connection, counted));
  }

  /** Streams a reply's body; resolves how it ended (a 503 when no buffer came in time). */
  async #stream(
    res: HttpResponse,
    request: CapturedRequest,
    reply: Extract<Reply, { kind: 'stream' }>,
    connection: Connection,
    counted: OpenRequest | undefined,
  ): Promise<Omit<Ending, 'method'>> {
    const progress = { sent: 0, headed: false, longestWaitMs: 0 };
    const cut = (): Omit<Ending, 'method'> => streamEnding(reply.status, progress, false);
    let buffers: Buffer[] | undefined;
    const asked = performance.now();
    try {
      buffers = await this.#pool.acquire(reply.length > this.#pool.bufferSize ? 2 : 1, this.#timeoutMs);
      this.#metrics?.bufferWait.observe((performance.now() - asked) / 1000);
    } catch (err) {
      this.#metrics?.bufferWait.observe((performance.now() - asked) / 1000);
      await reply.reader.close();
      // No buffer in time: the whole answer is a 503, and the request ends as an error, not a cut.
      if (connection.aborted) return cut();
      const refusal = errorReply(err, false);
      counted?.firstByte();
      res.cork(() => writeFull(res, refusal));
      return { status: refusal.status, bytes: refusal.body?.length ?? 0, cut: false };
    }
    try {
      if (connection.aborted) return cut();
      const context: StreamContext = {
        pool: this.#pool,
        timeoutMs: this.#timeoutMs,
        stalls: this.#stalls,
        park: this.#park,
        limiter: reply.member === undefined ? undefined : this.#uploads.of(reply.member),
        progress,
      };
      // streamBody gives the buffers back (early, when the client turns out slow).
      const lent = buffers;
      buffers = undefined;
      const head = (): void => {
        counted?.firstByte();
        writeHead(res, reply.status, reply.headers, false);
      };
      const bytes = await streamBody(res, reply.reader, lent, reply.length, connection, context, head);
      const outcome = streamEnding(reply.status, progress, bytes === reply.length);
      // Counted as the last byte goes out, not after the reader's close (file I/O), so a client that has
      // its body already sees the request on /metrics.
      counted?.end({ method: request.method, ...outcome });
      return outcome;
    } catch (err) {
      if (!progress.headed && !connection.aborted) {
        // Nothing went out: the client gets an error status, never a 200 it cannot tell from a good one.
        const refusal = errorReply(unservable(err, request.path), false);
        this.#log.warn({ err, path: request.path }, 'blob failed before its first byte; answered 404');
        counted?.firstByte();
        res.cork(() => writeFull(res, refusal));
        return { status: refusal.status, bytes: refusal.body?.length ?? 0, cut: false };
      }
      // Status and part of the body are out: the only signal left is closing the connection short of
      // its Content-Length, which every client reads as a broken body.
      this.#log.error({ err, path: request.path }, 'blob stream failed; closing connection');
      if (!connection.aborted) res.close();
      return cut();
    } finally {
      if (buffers !== undefined) this.#pool.release(buffers);
      await reply.reader.close().catch(() => undefined);
    }
  }
}

/**
 * What a blob whose body failed before its first byte is answered with: 404, so containerd moves on to
 * its next host (the registry) at once, whatever the cause (bytes that failed their check, a peer or
 * upstream that broke off, a store that did not answer).
 */
function unservable(err: unknown, path: string): BlobUnknownError {
  const why = err instanceof Error ? err.message : String(err);
  return new BlobUnknownError(`${path.slice(path.lastIndexOf('/') + 1)} could not be served intact: ${why}`, {
    cause: err,
  });
}
