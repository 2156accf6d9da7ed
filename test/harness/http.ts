import { connect } from 'node:net';
import { silentLogger } from '../../src/main/log/logger.js';
import { PeerAuth } from '../../src/main/peer/peer-auth.js';
import { PullHandler, type PullHandlerInit } from '../../src/main/registry/handler.js';
import { RegistryServer, type RegistryServerInit } from '../../src/main/registry/server.js';
import { MemoryNetwork, MemoryRouter } from '../../src/main/routing/memory.js';
import type { Router } from '../../src/main/routing/router.js';
import type { ContentStore } from '../../src/main/store/store.js';

export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/**
 * Sends bytes exactly as given (no URL normalisation, unlike fetch) and parses one response. Resolves with
 * what arrived when the server closes; rejects if nothing arrives within `timeoutMs`.
 */
export function rawRequest(
  port: number,
  request: string | Buffer,
  opts: { head?: boolean; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      const data = Buffer.concat(chunks);
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const lines = data.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0]?.split(' ')[1]);
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const length = opts.head === true ? 0 : Number(headers.get('content-length') ?? Number.NaN);
      const body = data.subarray(end + 4);
      if (Number.isNaN(length) || body.length < length) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, headers, body: body.subarray(0, length) });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within ${opts.timeoutMs ?? 5000} ms`));
    }, opts.timeoutMs ?? 5000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      finish();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      finish();
      if (!settled) {
        clearTimeout(timer);
        reject(
          new Error(`connection closed without a complete response (${Buffer.concat(chunks).length} bytes)`),
        );
      }
    });
    socket.write(request);
  });
}

export function get(path: string, headers: Record<string, string> = {}, method = 'GET'): string {
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
}

/** An in-process registry server on a free loopback port over any store. */
export async function startRegistry(
  store: ContentStore,
  handlerInit: PullHandlerInit = {},
  serverInit: Partial<RegistryServerInit> = {},
  localStore: ContentStore = store,
  /** The node's router: peer requests must be signed by another member of its network. Absent: refused. */
  router?: Router,
): Promise<{ server: RegistryServer; url: string; port: number; stop: () => Promise<void> }> {
  const auth = router === undefined ? undefined : new PeerAuth({ router });
  const handler = new PullHandler(
    {
      store,
      localStore,
      ready: () => store.ready(),
      ...(auth === undefined ? {} : { authenticate: (claim, request) => auth.verify(claim, request) }),
    },
    handlerInit,
  );
  const server = new RegistryServer(
    { handler, log: silentLogger() },
    { host: '127.0.0.1', port: 0, ...serverInit },
  );
  await server.start();
  const stop = async (): Promise<void> => {
    await server.stop();
    server.close();
  };
  return { server, url: `http://127.0.0.1:${server.port}`, port: server.port, stop };
}

/** Two started members of one in-memory network: `server` is a registry's router, `client` signs for a peer. */
export async function memberPair(): Promise<{
  server: MemoryRouter;
  /** Headers of a mirrored peer request from `client` to `server`, signed. */
  headers(method: 'GET' | 'HEAD', target: string, range?: string): Promise<Record<string, string>>;
}> {
  const network = new MemoryNetwork();
  const server = new MemoryRouter({ network }, { id: 'server', registry: 'http://127.0.0.1:1' });
  const client = new MemoryRouter({ network }, { id: 'client', registry: 'http://127.0.0.1:1' });
  await server.start();
  await client.start();
  const auth = new PeerAuth({ router: client });
  return {
    server,
    headers: async (method, target, range) => ({
      ...(await auth.headers('server', { method, target, range, mirrored: true, ownerFetch: false })),
      'x-shoal-mirrored': 'true',
    }),
  };
}
