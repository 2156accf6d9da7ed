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
  /** Resolves names (default: the system's `dns.lookup`); every answer passes through the guard. */
  resolve?: typeof dnsLookup;
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
  ['fec0::', 10],
  ['ff00::', 8],
  ['100::', 64],
  ['2001:db8::', 32],
  // Local-use NAT64: it reaches whatever IPv4 network the operator's translator serves.
  ['64:ff9b:1::', 48],
] as const)
  REFUSED.addSubnet(network, prefix, 'ipv6');

/** True for an address pull-through refuses unless it is named literally. */
export function isRefusedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 4) return REFUSED.check(address, 'ipv4');
  const embedded = embeddedIpv4(address);
  if (embedded !== undefined && REFUSED.check(embedded, 'ipv4')) return true;
  return REFUSED.check(address, 'ipv6');
}

/** The 16 bytes of an IPv6 address (valid, as `isIP` said), whatever its spelling. */
function ipv6Bytes(address: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16));
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/**
 * The IPv4 address an IPv6 address carries, in every spelling that reaches it: IPv4-mapped
 * (`::ffff:7f00:1`, `::ffff:127.0.0.1`), IPv4-compatible (`::7f00:1`), SIIT (`::ffff:0:7f00:1`), NAT64
 * (`64:ff9b::/96`, `64:ff9b:1::/48`), 6to4 (`2002:7f00:1::`) and Teredo (`2001:0::`, the client address
 * inverted). Undefined when it carries none.
 */
export function embeddedIpv4(address: string): string | undefined {
  const b = ipv6Bytes(address);
  const v4 = (at: number, invert = 0): string =>
    [0, 1, 2, 3].map((i) => ((b[at + i] as number) ^ invert).toString()).join('.');
  const zero = (from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0);
  const word = (at: number): number => ((b[at] as number) << 8) | (b[at + 1] as number);
  if (zero(0, 10) && word(10) === 0xffff) return v4(12);
  if (zero(0, 12) && !zero(12, 16)) return v4(12);
  if (zero(0, 8) && word(8) === 0xffff && word(10) === 0) return v4(12);
  if (word(0) === 0x64 && word(2) === 0xff9b && zero(4, 12)) return v4(12);
  if (word(0) === 0x2002) return v4(2);
  if (word(0) === 0x2001 && word(2) === 0) return v4(12, 0xff);
  return undefined;
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
  readonly #resolve: typeof dnsLookup;

  constructor(init: UpstreamGuardInit) {
    this.#resolve = init.resolve ?? dnsLookup;
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
    this.#resolve(hostname, { ...options, all: true }, (err, addresses) => {
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
