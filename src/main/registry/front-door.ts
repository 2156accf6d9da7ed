import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import {
  BadRequestError,
  HeadersTooLargeError,
  HttpVersionError,
  MethodNotImplementedError,
  RequestTimeoutError,
  type ShoalError,
} from '../errors.js';
import type { Logger } from '../log/logger.js';
import { waitUntil } from '../util/timeout.js';
import { answer, type CapturedRequest, captureClaims, limitsOf, type RequestLimits } from './answer.js';
import type { PullHandler } from './handler.js';
import type { RequestLedger } from './ledger.js';
import { errorReply, type FullReply, statusLine } from './reply.js';

export interface FrontDoorInit {
  /** Interface to bind; undefined binds every interface. */
  host?: string | undefined;
  /** Port; 0 picks a free one (see `port` after start). */
  port: number;
  maxUrlBytes?: number;
  maxHeaderBytes?: number;
  /**
   * How long a connection may take to send a request head, and stay open idle between requests; default
   * 10 s, what uWS allows on the blob listener, so both ports treat a silent client alike.
   */
  headTimeoutMs?: number;
}

/**
 * The registry port (`--registry-addr`): a Node HTTP server whose parser gives every request a status at
 * once (a TLS handshake, HTTP/1.0, a missing Host, absolute-form, `OPTIONS *`, an unknown method, oversized
 * headers) and answers pipelined requests in order. It answers everything but blob bytes itself: a blob GET
 * is checked here (filters, a miss, a bad range answer at once) and then redirected with 307 to the blob
 * listener, where uWebSockets.js streams the bytes with backpressure.
 */
export class FrontDoor {
  readonly #handler: PullHandler;
  readonly #log: Logger;
  readonly #ledger: RequestLedger | undefined;
  readonly #blobPort: () => number;
  readonly #init: FrontDoorInit;
  readonly #limits: RequestLimits;
  readonly #headTimeoutMs: number;
  #server: Server | undefined;
  #port = 0;
  /** Requests answered on but not yet finished. */
  readonly #open = new Set<ServerResponse>();
  #draining = false;

  constructor(
    deps: {
      handler: PullHandler;
      log: Logger;
      /** Counts every request; absent, nothing is counted (`--request-metrics=false`). */
      ledger?: RequestLedger | undefined;
      /** The blob listener's bound port. */
      blobPort: () => number;
    },
    init: FrontDoorInit,
  ) {
    this.#handler = deps.handler;
    this.#log = deps.log;
    this.#ledger = deps.ledger;
    this.#blobPort = deps.blobPort;
    this.#init = init;
    this.#limits = limitsOf(init);
    this.#headTimeoutMs = init.headTimeoutMs ?? 10_000;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    const server = createServer({
      // Past this, Node's parser answers 431 itself; shoal's own checks below it name the limit.
      maxHeaderSize: this.#limits.maxHeaderBytes + this.#limits.maxUrlBytes + 1024,
      headersTimeout: this.#headTimeoutMs,
      requestTimeout: this.#headTimeoutMs,
      keepAliveTimeout: this.#headTimeoutMs,
      // Node checks the two timeouts above only this often (30 s unless told).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, this.#headTimeoutMs / 4)),
      // Checked below instead, so the 400 carries an OCI error body like every other refusal.
      requireHostHeader: false,
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) =>
      refuse(err, socket, this.#headTimeoutMs, this.#ledger),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // exclusive: a second shoal on the same port fails to start instead of sharing it.
      server.listen({ host: this.#init.host, port: this.#init.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.#port = typeof address === 'object' && address !== null ? address.port : 0;
    this.#server = server;
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.#open.size;
  }

  /**
   * Stops accepting connections and closes idle ones, lets the requests in flight be answered (each with
   * `Connection: close`) until `deadline` (epoch ms), then cuts what remains. Returns how many were cut.
   */
  async drain(deadline: number): Promise<number> {
    this.#draining = true;
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return 0;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await waitUntil(() => this.#open.size === 0, deadline);
    const cut = this.#open.size;
    server.closeAllConnections();
    await closed;
    return cut;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const gone = new AbortController();
    const counted = this.#ledger?.begin();
    let bytes = 0;
    const write = (reply: FullReply): void => {
      counted?.firstByte();
      bytes = writeReply(res, reply);
    };
    this.#open.add(res);
    res.once('close', () => {
      this.#open.delete(res);
      // Closed before the answer was complete: the client left, and work started for it stops.
      if (!res.writableFinished) gone.abort();
      const method = (req.method ?? 'GET').toUpperCase();
      counted?.end({ method, status: res.statusCode, bytes, cut: !res.writableFinished });
    });
    if (this.#draining) res.shouldKeepAlive = false;
    if (req.httpVersionMajor !== 1) {
      res.shouldKeepAlive = false;
      write(errorReply(new HttpVersionError(`HTTP/${req.httpVersion} is not supported`), false));
      return;
    }
    if (req.httpVersionMinor === 1 && req.headers.host === undefined) {
      // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400.
      write(errorReply(new BadRequestError('an HTTP/1.1 request needs a Host header'), false));
      return;
    }
    const request: CapturedRequest = {
      ...capture(req, this.#blobPort()),
      signal: gone.signal,
      trace: counted?.trace,
    };
    answer(this.#handler, request, this.#limits, this.#log).then(
      (reply) => {
        if (reply.kind === 'full') return write(reply);
        // Blob bytes never stream here (the handler redirects them); a stream is a bug, not a reply.
        void reply.reader.close();
        this.#log.error({ path: request.path }, 'front door got a stream reply');
        write(errorReply(new Error('stream on the front door'), request.method === 'HEAD'));
      },
      (err: unknown) => {
        this.#log.error({ err, path: request.path }, 'request handling crashed');
        res.destroy();
      },
    );
  }
}

/** Writes a whole reply; returns its body's length (0 when the connection is already gone). */
function writeReply(res: ServerResponse, reply: FullReply): number {
  if (res.destroyed) return 0;
  res.statusCode = reply.status;
  for (const [name, value] of reply.headers) res.setHeader(name, value);
  res.end(reply.body);
  return reply.body?.length ?? 0;
}

/** The path and query of a request target: origin-form, or absolute-form (`GET http://host/v2/ HTTP/1.1`). */
function target(url: string): { path: string; query: string } {
  let raw = url;
  if (/^https?:\/\//i.test(url)) {
    const afterScheme = url.indexOf('//') + 2;
    const slash = url.indexOf('/', afterScheme);
    raw = slash < 0 ? '/' : url.slice(slash);
  }
  const q = raw.indexOf('?');
  return q < 0 ? { path: raw, query: '' } : { path: raw.slice(0, q), query: raw.slice(q + 1) };
}

/** The host a client reached this node by: its Host header when it names a valid host, else the socket's. */
function reachedHost(req: IncomingMessage): string {
  const header = req.headers.host;
  if (header !== undefined && header !== '') {
    try {
      const hostname = new URL(`http://${header}`).hostname;
      if (hostname !== '') return hostname;
    } catch {
      // Not a host: fall through to the address the connection came in on.
    }
  }
  const local = (req.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  return local.includes(':') ? `[${local}]` : local;
}

function capture(req: IncomingMessage, blobPort: number): CapturedRequest {
  const { path, query } = target(req.url ?? '/');
  let headerBytes = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2)
    headerBytes += (raw[i] as string).length + (raw[i + 1] as string).length + 4;
  const header = (name: string): string => {
    const value = req.headers[name];
    return typeof value === 'string' ? value : (value?.join(', ') ?? '');
  };
  // Node joins repeated Accept lines (Go clients send one per media type) with ', '.
  const accept = header('accept');
  const range = header('range');
  return {
    ...captureClaims(header),
    method: (req.method ?? 'GET').toUpperCase(),
    path,
    query,
    range: range === '' ? undefined : range,
    accept: accept === '' ? undefined : accept,
    urlBytes: (req.url ?? '').length,
    headerBytes,
    blobLocation: () => `http://${reachedHost(req)}:${blobPort}${path}${query === '' ? '' : `?${query}`}`,
  };
}

/** A request Node's parser refused: its status at once, as an OCI JSON error, and a close. */
function refuse(
  err: NodeJS.ErrnoException & { rawPacket?: Buffer },
  socket: Socket,
  headTimeoutMs: number,
  ledger: RequestLedger | undefined,
): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const reply = errorReply(refusal(err, headTimeoutMs), false);
  const head = [`HTTP/1.1 ${statusLine(reply.status)}`, ...reply.headers.map(([n, v]) => `${n}: ${v}`)];
  socket.end(`${[...head, 'Connection: close'].join('\r\n')}\r\n\r\n${reply.body?.toString() ?? ''}`);
  // Counted as a request of no kind: a TLS handshake or a malformed head is what a misconfigured client sends.
  ledger?.begin().end({ method: '-', status: reply.status, bytes: reply.body?.length ?? 0, cut: false });
}

/** `METHOD target HTTP/x.y`, the method a token (RFC 9110 §9.1). */
const REQUEST_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/\d\.\d\r?\n/;

function refusal(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, headTimeoutMs: number): ShoalError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError('request head too large');
    case 'HPE_INVALID_VERSION':
      return new HttpVersionError('only HTTP/1.0 and HTTP/1.1 are served on this port');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RequestTimeoutError(`no complete request head within ${headTimeoutMs} ms`);
    case 'HPE_INVALID_METHOD':
      // 0x16 is a TLS record's first byte: a client trying https first (podman, skopeo) falls back at once.
      if (err.rawPacket?.[0] === 0x16)
        return new BadRequestError('this port speaks plain HTTP; a TLS handshake was sent');
      // A well-formed request line with a method nobody implements is 501; anything else is malformed.
      if (REQUEST_LINE.test(err.rawPacket?.subarray(0, 8192).toString('latin1') ?? ''))
        return new MethodNotImplementedError('unknown method');
      return new BadRequestError('malformed HTTP request');
    default:
      return new BadRequestError('malformed HTTP request');
  }
}
