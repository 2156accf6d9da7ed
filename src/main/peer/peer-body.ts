import { connect, type Socket } from 'node:net';
import { PeerRequestError } from './peer-client.js';
import { MIRRORED_HEADER } from './protocol.js';

/** Bytes a connection reads into at a time; reused for every read, so no memory is allocated per chunk. */
const READ_BUFFER_BYTES = 512 << 10;
const MAX_HEAD_BYTES = 16 << 10;
/** Read buffers kept for the next connections once theirs ended. */
const MAX_SPARE_BUFFERS = 16;

/**
 * Read buffers of ended connections. A blob is a connection, and a fresh half-megabyte each time is memory
 * V8 counts as external: dozens per image pull would set off a full garbage collection every few hundred
 * milliseconds, which cost more CPU than the transfer itself.
 */
const spareBuffers: Buffer[] = [];

function takeReadBuffer(): Buffer {
  return spareBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
}

function giveReadBuffer(buffer: Buffer): void {
  if (spareBuffers.length < MAX_SPARE_BUFFERS) spareBuffers.push(buffer);
}

/** A peer's answer to a GET: status and headers now, the body as it arrives. */
export interface PeerBodyResponse {
  status: number;
  /** Header names in lower case. */
  headers: ReadonlyMap<string, string>;
  body: PeerBody;
}

/**
 * A body read straight off the socket into one reused buffer. The socket is paused while the buffer holds
 * bytes nobody has copied out yet, so backpressure reaches the peer without any queue.
 */
export interface PeerBody {
  /** Copies bytes already received into `into[from..want)`; returns the new fill. Never waits. */
  drain(into: Buffer, from: number, want: number): number;
  /** Resolves once bytes are waiting, the body is finished, or `timeoutMs` passed. */
  wait(timeoutMs: number): Promise<void>;
  /** Bytes received and not yet copied out. */
  readonly available: number;
  /** True when nothing more will arrive: the body is complete, or the connection failed. */
  readonly finished: boolean;
  destroy(): void;
}

/**
 * GETs `path` from a peer registry on a connection of its own (Connection: close), reading the body with
 * `onread` into a fixed buffer. node:http allocates a fresh 64 KiB buffer per read, and on a busy node that
 * churn (page faults, GC) cost several times the copy itself. Resolves at the headers, 2xx only; `timeoutMs`
 * bounds the wait for them.
 */
export function getPeerBody(
  registry: string,
  path: string,
  options: {
    range?: string | undefined;
    signal: AbortSignal;
    timeoutMs: number;
    /** Proof that this node is a member (PeerAuth.headers). */
    auth: Record<string, string>;
    /** The peer sent more bytes than its Content-Length: they are dropped, and this is told how many. */
    onOverlong?: (extra: number) => void;
  },
): Promise<PeerBodyResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(registry);
    const connection = new BodyConnection(url, { resolve, reject }, options.onOverlong);
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: ${url.host}`,
      `${MIRRORED_HEADER}: true`,
      'Accept: */*',
      'Connection: close',
    ];
    if (options.range !== undefined) lines.push(`Range: ${options.range}`);
    for (const [name, value] of Object.entries(options.auth)) lines.push(`${name}: ${value}`);
    connection.start(`${lines.join('\r\n')}\r\n\r\n`, options.signal, options.timeoutMs);
  });
}

interface Pending {
  resolve: (response: PeerBodyResponse) => void;
  reject: (err: Error) => void;
}

class BodyConnection implements PeerBody {
  readonly #url: URL;
  #pending: Pending | undefined;
  #socket: Socket | undefined;
  #head: Buffer[] = [];
  #headBytes = 0;
  #length = -1;
  #received = 0;
  /** Unread body bytes in the read buffer. */
  #window: Buffer | undefined;
  #finished = false;
  #wake: (() => void) | undefined;
  #headerTimer: NodeJS.Timeout | undefined;
  /** The read buffer, until it goes back for another connection (the socket closed, no byte left unread). */
  #readBuffer: Buffer | undefined;
  #closed = false;
  readonly #onOverlong: ((extra: number) => void) | undefined;

  constructor(url: URL, pending: Pending, onOverlong?: (extra: number) => void) {
    this.#url = url;
    this.#pending = pending;
    this.#onOverlong = onOverlong;
  }

  get finished(): boolean {
    return this.#finished && this.#window === undefined;
  }

  get available(): number {
    return this.#window?.length ?? 0;
  }

  start(request: string, signal: AbortSignal, timeoutMs: number): void {
    if (signal.aborted) {
      this.#fail(new PeerRequestError(`request to ${this.#url.host} aborted`));
      return;
    }
    const onAbort = (): void => this.#fail(new PeerRequestError(`request to ${this.#url.host} aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    this.#headerTimer = setTimeout(
      () =>
        this.#fail(
          new PeerRequestError(`peer ${this.#url.host} sent no headers in ${timeoutMs} ms`, {
            timedOut: true,
          }),
        ),
      timeoutMs,
    );
    const readBuffer = takeReadBuffer();
    this.#readBuffer = readBuffer;
    const socket = connect({
      host: this.#url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.#url.port || 80),
      noDelay: true,
      onread: { buffer: readBuffer, callback: (n) => this.#onRead(n, readBuffer) },
    });
    this.#socket = socket;
    socket.on('error', (err) =>
      this.#fail(new PeerRequestError(`peer ${this.#url.host}: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => {
      signal.removeEventListener('abort', onAbort);
      this.#closed = true;
      this.#fail(new PeerRequestError(`peer ${this.#url.host} closed the connection`));
      this.#recycle();
    });
    socket.write(request);
  }

  drain(into: Buffer, from: number, want: number): number {
    const window = this.#window;
    if (window === undefined || from >= want) return from;
    const n = window.copy(into, from, 0, want - from);
    if (n === window.length) {
      this.#window = undefined;
      // The read buffer is free again: let the socket fill it.
      if (!this.#finished) this.#socket?.resume();
      this.#recycle();
    } else {
      this.#window = window.subarray(n);
    }
    return from + n;
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.#window !== undefined || this.#finished) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, timeoutMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  destroy(): void {
    this.#finished = true;
    this.#window = undefined;
    this.#socket?.destroy();
    this.#wakeUp();
    this.#recycle();
  }

  /** Gives the read buffer back once the socket can no longer fill it and no unread byte is left in it. */
  #recycle(): void {
    const buffer = this.#readBuffer;
    if (buffer === undefined || !this.#closed || this.#window !== undefined) return;
    this.#readBuffer = undefined;
    giveReadBuffer(buffer);
  }

  /** onread callback: returns false to pause the socket while the buffer holds unread body bytes. */
  #onRead(n: number, buffer: Buffer): boolean {
    let chunk = buffer.subarray(0, n);
    if (this.#length < 0) {
      const body = this.#readHead(chunk);
      if (body === undefined) return true;
      chunk = body;
    }
    if (chunk.length === 0) return true;
    const room = this.#length - this.#received;
    if (chunk.length > room) {
      // An honest peer never sends more than it declared: the excess is dropped, never passed on.
      this.#onOverlong?.(chunk.length - room);
      chunk = chunk.subarray(0, room);
    }
    this.#received += chunk.length;
    this.#window = chunk;
    if (this.#received === this.#length) this.#complete();
    this.#wakeUp();
    return false;
  }

  /** Collects the head; once complete, answers the caller and returns the body bytes that followed it. */
  #readHead(chunk: Buffer): Buffer | undefined {
    // The head is tiny: copy it out, since the read buffer is reused.
    this.#head.push(Buffer.from(chunk));
    this.#headBytes += chunk.length;
    const all = Buffer.concat(this.#head);
    const end = all.indexOf('\r\n\r\n');
    if (end === -1) {
      if (this.#headBytes > MAX_HEAD_BYTES)
        this.#fail(new PeerRequestError(`peer ${this.#url.host} sent an oversized head`));
      return undefined;
    }
    this.#head = [];
    clearTimeout(this.#headerTimer);
    const [statusLine = '', ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length'));
    if (!(status >= 200 && status < 300) || !Number.isSafeInteger(length) || length < 0) {
      // A 2xx without a length is a peer misbehaving, not one that answered: it is set aside like a dead one.
      const answered = !(status >= 200 && status < 300);
      const why = answered ? `status ${status}` : 'no Content-Length';
      const options = answered ? { peerStatus: status } : {};
      this.#fail(new PeerRequestError(`peer ${this.#url.host} answered ${why}`, options));
      return undefined;
    }
    this.#length = length;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.resolve({ status, headers, body: this });
    if (length === 0) this.#complete();
    return all.subarray(end + 4);
  }

  #complete(): void {
    this.#finished = true;
    // Connection: close. The window still holds the last bytes; the buffer outlives the socket.
    this.#socket?.destroy();
  }

  #fail(err: Error): void {
    clearTimeout(this.#headerTimer);
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(err);
    if (this.#received < this.#length || this.#length < 0) {
      this.#finished = true;
      this.#socket?.destroy();
    }
    this.#wakeUp();
  }

  #wakeUp(): void {
    const waiting = this.#wake;
    this.#wake = undefined;
    waiting?.();
  }
}
