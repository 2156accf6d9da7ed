import { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import type { SideRoute } from '../registry/side-server.js';
import { withTimeout } from '../util/timeout.js';

/** Produces the multiaddrs to join through; called at start and whenever the routing table empties. */
export type Bootstrapper = () => Promise<string[]>;

export function staticBootstrap(peers: readonly string[]): Bootstrapper {
  return async () => [...peers];
}

/**
 * Resolves a name (a headless Service) to A/AAAA records and dials each on the router port. `resolver`
 * (host:port) overrides the system resolver. A name without a trailing dot that has no records is tried
 * with each search domain in turn, as the system resolver would: in a pod, `shoal-bootstrap.shoal.svc`
 * becomes `shoal-bootstrap.shoal.svc.<cluster domain>`, whatever the cluster's domain is. Node's
 * `dns.resolve*` applies no search domains of its own.
 */
export function dnsBootstrap(
  domain: string,
  routerPort: number,
  timeoutMs: number,
  resolver?: string,
  search: () => Promise<string[]> = systemSearchDomains,
): Bootstrapper {
  return async () => {
    const dns = new Resolver({ timeout: timeoutMs, tries: 2 });
    if (resolver !== undefined) dns.setServers([resolver]);
    const names = domain.endsWith('.')
      ? [domain]
      : [domain, ...(await search()).map((suffix) => `${domain}.${suffix}`)];
    for (const name of names) {
      const [v4, v6] = await Promise.all([
        dns.resolve4(name).catch(() => []),
        dns.resolve6(name).catch(() => []),
      ]);
      if (v4.length + v6.length === 0) continue;
      return [
        ...v4.map((ip) => `/ip4/${ip}/tcp/${routerPort}`),
        ...v6.map((ip) => `/ip6/${ip}/tcp/${routerPort}`),
      ];
    }
    return [];
  };
}

/** The search domains of `resolv.conf` text: its last `search` (or `domain`) line, as glibc reads it. */
export function searchDomains(resolvConf: string): string[] {
  let found: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const [keyword, ...values] = line.trim().split(/\s+/);
    if (keyword === 'search' || keyword === 'domain') found = values.filter((value) => value !== '');
  }
  return found.map((value) => value.replace(/\.$/, '')).filter((value) => value !== '');
}

async function systemSearchDomains(): Promise<string[]> {
  return searchDomains(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
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
