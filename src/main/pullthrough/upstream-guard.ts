import {
  lookup as dnsLookup,
  type LookupAddress,
  type LookupAllOptions,
  type LookupOneOptions,
} from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { UpstreamRefusedError } from '../errors.js';

export interface UpstreamGuardInit {
  /** Registries pull-through may reach, as containerd names them (`docker.io`, `10.0.0.9:5000`). */
  registries: readonly string[];
  /** Registry hosts that may resolve to loopback, link-local or private addresses (`--upstream-private-hosts`). */
  privateHosts?: readonly string[];
}

/** Addresses a registry named by a hostname may not resolve to: loopback, link-local, private, special. */
const REFUSED = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  REFUSED.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  REFUSED.addSubnet(network, prefix, 'ipv6');

/** True for an address pull-through refuses unless it is named literally. */
export function isRefusedAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return REFUSED.check(mapped, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return REFUSED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The host part of `registry` (`[::1]:5000` → `::1`, `docker.io` → `docker.io`). */
function hostOf(registry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(registry)?.[1];
  if (bracketed !== undefined) return bracketed;
  const colon = registry.lastIndexOf(':');
  return colon > 0 && registry.indexOf(':') === colon ? registry.slice(0, colon) : registry;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * Where pull-through may connect: only the registries the operator named, and, for a name that is a
 * hostname, only public addresses (unless the host is in `privateHosts`). A registry named by an address
 * (`127.0.0.1:5000`) is reached at that address. Every refusal is an UpstreamRefusedError, which clients see
 * only as "upstream unavailable".
 */
export class UpstreamGuard {
  readonly #registries: ReadonlySet<string>;
  /** The hosts of the named registries, without ports. */
  readonly #hosts: ReadonlySet<string>;
  readonly #privateHosts: ReadonlySet<string>;

  constructor(init: UpstreamGuardInit) {
    this.#registries = new Set(init.registries.map((registry) => registry.toLowerCase()));
    this.#hosts = new Set([...this.#registries].map(hostOf));
    this.#privateHosts = new Set((init.privateHosts ?? []).map((host) => hostOf(host.toLowerCase())));
  }

  /** Throws unless `registry` is one the operator named. */
  check(registry: string): void {
    if (!this.#registries.has(registry.toLowerCase())) {
      throw new UpstreamRefusedError(`${registry} is not in --mirrored-registries`);
    }
  }

  /**
   * A `lookup` for node:http(s) that drops refused addresses. An address literal never reaches it (Node
   * connects to literals directly), so what it sees are hostnames: a registry's, or its token realm's.
   */
  readonly lookup = (
    hostname: string,
    options: LookupOneOptions | LookupAllOptions,
    callback: LookupCallback,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) return callback(err, '');
      const usable = this.#privateHosts.has(hostname.toLowerCase())
        ? addresses
        : addresses.filter((entry) => !isRefusedAddress(entry.address));
      if (usable.length === 0) {
        const refused = new UpstreamRefusedError(`${hostname} resolves only to refused addresses`);
        return callback(Object.assign(refused, { code: 'EREFUSEDADDRESS' }) as NodeJS.ErrnoException, '');
      }
      if ((options as LookupAllOptions).all === true) return callback(null, usable);
      const first = usable[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };

  /**
   * Throws unless `url` (a token realm the registry named) may be reached: http(s), and an address literal
   * that is not refused, or a hostname with at least one address that is not.
   */
  async checkUrl(url: URL): Promise<void> {
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new UpstreamRefusedError(`${url.protocol} is not a registry scheme`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) {
      // A registry named by an address may name a realm at that address (another port of the same host).
      if (isRefusedAddress(host) && !this.#hosts.has(host))
        throw new UpstreamRefusedError(`${host} is a refused address`);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.lookup(host, { all: true }, (err) => (err === null ? resolve() : reject(err)));
    });
  }
}
