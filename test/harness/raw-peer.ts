import { createServer, type Server, type Socket } from 'node:net';
import type { Digest } from '../../src/main/oci/digest.js';
import { type MemoryNetwork, MemoryRouter } from '../../src/main/routing/memory.js';
import type { ContentStore } from '../../src/main/store/store.js';
import { startRegistry } from './http.js';
import { freePort } from './process.js';

/** How a fake peer answers one request: it writes what it likes on the socket, when it likes. */
export type Respond = (request: { method: string; path: string }, socket: Socket) => void;

/** A Respond that writes the whole response `answer` gives at once, and closes. */
export const answerWith =
  (answer: (method: string, path: string) => Buffer): Respond =>
  ({ method, path }, socket) =>
    socket.end(answer(method, path));

/**
 * A member that speaks HTTP the way it likes, from a raw socket: each request's head is handed to
 * `respond`. It records what it was asked, and cuts every connection still open when it stops.
 */
export class RawPeer {
  readonly asked: string[] = [];
  readonly #server: Server;
  readonly #open = new Set<Socket>();
  #router: MemoryRouter | undefined;

  constructor(respond: Respond) {
    this.#server = createServer((socket: Socket) => {
      this.#open.add(socket);
      socket.once('close', () => this.#open.delete(socket));
      let head = '';
      const onData = (chunk: Buffer): void => {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        socket.off('data', onData);
        const [method = '', path = ''] = head.split(' ');
        this.asked.push(`${method} ${path.split('?')[0]}`);
        respond({ method, path }, socket);
      };
      socket.on('data', onData);
      socket.on('error', () => undefined);
    });
  }

  get router(): MemoryRouter {
    if (this.#router === undefined) throw new Error('not started');
    return this.#router;
  }

  /** Listens, joins `network` as `id`, and advertises `keys`. */
  async start(network: MemoryNetwork, id: string, keys: readonly string[]): Promise<void> {
    const port = await freePort();
    await new Promise<void>((resolve) => this.#server.listen(port, '127.0.0.1', resolve));
    this.#router = new MemoryRouter({ network }, { id, registry: `http://127.0.0.1:${port}` });
    await this.#router.start();
    await this.#router.advertise(keys);
  }

  async stop(): Promise<void> {
    await this.#router?.stop();
    for (const socket of this.#open) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A node of `network` on a port of its own: it serves `local`, or what `serve` builds on it and its router. */
export async function startMember(
  network: MemoryNetwork,
  id: string,
  local: ContentStore,
  serve: (router: MemoryRouter) => ContentStore = () => local,
): Promise<{ router: MemoryRouter; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const router = new MemoryRouter({ network }, { id, registry: `http://127.0.0.1:${port}` });
  await router.start();
  const server = await startRegistry(serve(router), {}, { port }, local, router);
  return {
    router,
    url: server.url,
    stop: async () => {
      await server.stop();
      await router.stop();
    },
  };
}

/** A raw HTTP/1.1 response head (Connection: close) and `body`. */
export function response(
  status: number,
  headers: Record<string, string | number>,
  body: Uint8Array = Buffer.alloc(0),
): Buffer {
  const lines = [`HTTP/1.1 ${status} X`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`), body]);
}

/** The headers a peer answers a blob with. */
export const blobHeaders = (digest: Digest, length: number): Record<string, string | number> => ({
  'Content-Type': 'application/octet-stream',
  'Docker-Content-Digest': digest,
  'Content-Length': length,
});
