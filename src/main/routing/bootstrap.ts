import { Resolver } from 'node:dns/promises';
import type { SideRoute } from '../registry/side-server.js';
import { withTimeout } from '../util/timeout.js';

/** Produces the multiaddrs to join through; called at start and whenever the routing table empties. */
export type Bootstrapper = () => Promise<string[]>;

export function staticBootstrap(peers: readonly string[]): Bootstrapper {
  return async () => [...peers];
}

/**
 * Resolves a name (a headless Service) to A/AAAA records and dials each on the router port. `resolver`
 * (host:port) overrides the system resolver.
 */
export function dnsBootstrap(
  domain: string,
  routerPort: number,
  timeoutMs: number,
  resolver?: string,
): Bootstrapper {
  return async () => {
    const dns = new Resolver({ timeout: timeoutMs, tries: 2 });
    if (resolver !== undefined) dns.setServers([resolver]);
    const [v4, v6] = await Promise.all([
      dns.resolve4(domain).catch(() => []),
      dns.resolve6(domain).catch(() => []),
    ]);
    return [
      ...v4.map((ip) => `/ip4/${ip}/tcp/${routerPort}`),
      ...v6.map((ip) => `/ip6/${ip}/tcp/${routerPort}`),
    ];
  };
}

/** Polls a peer's `/id` endpoint (see bootstrapIdRoute), which lists its multiaddrs one per line. */
export function httpBootstrap(url: string, timeoutMs: number): Bootstrapper {
  return async () => {
    const response = await withTimeout(
      fetch(url, { signal: AbortSignal.timeout(timeoutMs) }),
      timeoutMs,
      `GET ${url}`,
    );
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return (await response.text())
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith('/'));
  };
}

/** `GET /id` on `--http-bootstrap-addr`: this node's multiaddrs, one per line, for other nodes' HTTP bootstrap. */
export function bootstrapIdRoute(addresses: () => string[]): SideRoute {
  return {
    method: 'get',
    path: '/id',
    handle: async () => ({ status: 200, contentType: 'text/plain', body: `${addresses().join('\n')}\n` }),
  };
}
