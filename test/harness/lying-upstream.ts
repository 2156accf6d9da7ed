import { createHash } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { pullThroughArgs, ShoalProcess } from './shoal.js';

/** How the upstream lies about one repository's content. */
export type Lie =
  /** HEAD says 100 bytes; GET sends the whole, correct body. */
  | 'head-size'
  /** GET says 100 bytes and sends the whole body anyway. */
  | 'get-length'
  /** GET sends bytes of the right length that do not hash to the digest. */
  | 'digest'
  /** GET sends the right bytes chunked, with no length. */
  | 'chunked'
  /** Honest. */
  | 'none';

/** One piece of content the upstream serves, under any repository. */
export interface UpstreamContent {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export function contentOf(bytes: Buffer, mediaType = 'application/octet-stream'): UpstreamContent {
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, mediaType };
}

/**
 * A registry that lies in the ways a broken proxy, a buggy registry or an attacker does: written on raw
 * sockets, since node:http refuses to send a body longer than its Content-Length. The repository name
 * `lie/<kind>` picks the lie. Serves `/v2/<repo>/blobs/<digest>` and `/v2/<repo>/manifests/<digest|tag>`.
 */
export class LyingUpstream {
  readonly #server: Server;
  readonly #content = new Map<string, UpstreamContent>();
  readonly #tags = new Map<string, string>();
  /** Requests seen, as `METHOD path`. */
  readonly requests: string[] = [];
  port = 0;

  constructor() {
    this.#server = createServer((socket) => this.#serve(socket));
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  add(content: UpstreamContent, tag?: string): void {
    this.#content.set(content.digest, content);
    if (tag !== undefined) this.#tags.set(tag, content.digest);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #serve(socket: Socket): void {
    let head = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [method = '', target = ''] = head.slice(0, head.indexOf('\r\n')).split(' ');
      head = head.slice(end + 4);
      this.requests.push(`${method} ${target}`);
      this.#answer(socket, method, new URL(target, 'http://upstream').pathname);
    });
  }

  #answer(socket: Socket, method: string, path: string): void {
    const match = /^\/v2\/lie\/([a-z-]+)\/(blobs|manifests)\/(.+)$/.exec(path);
    const lie = (match?.[1] ?? 'none') as Lie;
    const reference = match?.[3] ?? '';
    const digest = this.#tags.get(reference) ?? reference;
    const content = this.#content.get(digest);
    if (path === '/v2/' || content === undefined) {
      const status = path === '/v2/' ? '200 OK' : '404 Not Found';
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      return;
    }
    const common = `Docker-Content-Digest: ${content.digest}\r\nContent-Type: ${content.mediaType}\r\nConnection: close\r\n`;
    let body = content.bytes;
    let length = `Content-Length: ${body.length}\r\n`;
    if (method === 'HEAD') {
      if (lie === 'head-size') length = 'Content-Length: 100\r\n';
      socket.end(`HTTP/1.1 200 OK\r\n${common}${length}\r\n`);
      return;
    }
    if (lie === 'get-length') length = 'Content-Length: 100\r\n';
    if (lie === 'digest') body = Buffer.from(body.map((byte) => byte ^ 0xff));
    if (lie === 'chunked') {
      socket.write(`HTTP/1.1 200 OK\r\n${common}Transfer-Encoding: chunked\r\n\r\n`);
      socket.write(`${body.length.toString(16)}\r\n`);
      socket.write(body);
      socket.end('\r\n0\r\n\r\n');
      return;
    }
    socket.write(`HTTP/1.1 200 OK\r\n${common}${length}\r\n`);
    socket.end(body);
  }
}

/** A TCP listener that counts the connections made to it: where shoal must never connect. */
export class CountingListener {
  readonly #server: Server;
  connections = 0;
  port = 0;
  readonly host: string;

  constructor(host = '127.0.0.1') {
    this.host = host;
    this.#server = createServer((socket) => {
      this.connections++;
      socket.on('error', () => undefined);
      socket.destroy();
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, this.host, resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A pull-through node in front of a LyingUpstream, beside listeners it must never connect to. */
export interface GuardedPullThrough {
  upstream: LyingUpstream;
  /** One listener per host asked for; the first is also named, as `localhost:<port>`, in the node's list. */
  listeners: CountingListener[];
  node: ShoalProcess;
  stop(): Promise<void>;
}

/**
 * Starts the upstream with `contents` (each with an optional tag), a counting listener on each of `hosts`,
 * and a shoal that mirrors the upstream and, by a hostname that resolves to loopback, the first listener:
 * listed, so the handler passes it, and still never dialled (no --upstream-private-hosts).
 */
export async function startGuardedPullThrough(
  dataDir: string,
  contents: ReadonlyArray<readonly [UpstreamContent, string?]>,
  hosts: readonly string[],
): Promise<GuardedPullThrough> {
  const upstream = new LyingUpstream();
  for (const [content, tag] of contents) upstream.add(content, tag);
  await upstream.start();
  const listeners: CountingListener[] = [];
  for (const host of hosts) {
    const listener = new CountingListener(host);
    await listener.start();
    listeners.push(listener);
  }
  const named = listeners[0]?.port ?? 1;
  const node = new ShoalProcess([
    ...pullThroughArgs(dataDir, upstream.host),
    '--mirrored-registries',
    `http://localhost:${named}`,
    '--insecure-registries',
    `localhost:${named}`,
  ]);
  await node.start();
  return {
    upstream,
    listeners,
    node,
    stop: async () => {
      await node.stop();
      await upstream.stop();
      for (const listener of listeners) await listener.stop();
    },
  };
}
