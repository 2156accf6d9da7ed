import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { httpOrigin } from '../../util/url.js';

// A node announces where its registry API listens next to its router addresses, as `/ip4/<ip>/tcp/<port>/http`.
// Identify and kad-dht provider records carry announced addresses to every peer, so a lookup learns a
// provider's registry with the record itself, with no round trip to ask for it. TCP dials only exact
// `/ip4|ip6/…/tcp/…` addresses, so libp2p never tries to dial these.

const HOSTS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6']);
const LOOPBACK = /^(127\.|::1$|localhost$)/;

interface HostPort {
  host: string;
  port: number;
}

function hostPort(address: Multiaddr): HostPort | undefined {
  const components = address.getComponents();
  const host = components.find((component) => HOSTS.has(component.name))?.value;
  const port = Number(components.find((component) => component.name === 'tcp')?.value);
  return host === undefined || !Number.isInteger(port) ? undefined : { host, port };
}

export function isRegistryAddress(address: Multiaddr): boolean {
  return address.getComponents().some((component) => component.name === 'http');
}

/** The registry addresses to announce: each TCP router address's host with the registry's port. */
export function registryAddresses(routerAddresses: readonly Multiaddr[], port: number): Multiaddr[] {
  const seen = new Set<string>();
  const out: Multiaddr[] = [];
  for (const address of routerAddresses) {
    if (isRegistryAddress(address)) continue;
    const found = hostPort(address);
    if (found === undefined) continue;
    const protocol = address.getComponents().find((component) => HOSTS.has(component.name))?.name;
    const text = `/${protocol}/${found.host}/tcp/${port}/http`;
    if (!seen.has(text)) {
      seen.add(text);
      out.push(multiaddr(text));
    }
  }
  return out;
}

/**
 * The registry origin of a peer from the addresses it announced. `via` is the IP this node reaches the
 * peer's router on, when connected: an announced address on that IP wins, else that IP with the announced
 * port (the peer listens on every interface). Unconnected, a non-loopback address wins, since a loopback
 * one would name this node's own host.
 */
export function registryOrigin(addresses: readonly Multiaddr[], via?: string): string | undefined {
  const candidates = addresses
    .filter(isRegistryAddress)
    .map(hostPort)
    .filter((found): found is HostPort => found !== undefined);
  const first = candidates[0];
  if (first === undefined) return undefined;
  if (via !== undefined) {
    const same = candidates.find((candidate) => candidate.host === via);
    return httpOrigin(via, (same ?? first).port);
  }
  const chosen = candidates.find((candidate) => !LOOPBACK.test(candidate.host)) ?? first;
  return httpOrigin(chosen.host, chosen.port);
}

/** The IP (or name) at the far end of a connection's remote address. */
export function remoteHost(address: Multiaddr | undefined): string | undefined {
  return address === undefined ? undefined : hostPort(address)?.host;
}
