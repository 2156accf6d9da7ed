import { ConfigError } from '../errors.js';
import {
  type ImageReference,
  parseImageReference,
  parseRegistryHost,
  parseRepository,
} from '../oci/reference.js';

/** A listen address. `host` is undefined for `:port` (all interfaces). */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration (`20ms`, `1.5s`, `1m30s`) into milliseconds. */
export function parseDuration(raw: string, flag: string): number {
  const text = raw.trim();
  if (text === '0') return 0;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(text); match !== null; match = part.exec(text)) {
    total += Number(match[1]) * (DURATION_UNITS[match[2] ?? ''] ?? Number.NaN);
    consumed = part.lastIndex;
  }
  if (text.length === 0 || consumed !== text.length || !Number.isFinite(total)) {
    throw new ConfigError(`--${flag}: invalid duration ${JSON.stringify(raw)} (use e.g. 20ms, 5s, 1m)`);
  }
  return total;
}

export function parseListenAddress(raw: string, flag: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([a-zA-Z0-9.-]*)):(\d{1,5})$/.exec(raw.trim());
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port > 65535) {
    throw new ConfigError(
      `--${flag}: invalid address ${JSON.stringify(raw)} (use host:port, :port or [v6]:port)`,
    );
  }
  const host = match[1] ?? match[2];
  return { host: host === '' ? undefined : host, port };
}

export function parseInteger(raw: string, flag: string, min: number, max: number): number {
  const value = Number(raw.trim());
  if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
    throw new ConfigError(
      `--${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** A size in bytes, or a share of the filesystem that holds a directory (resolved at start). */
export type ByteSize = { bytes: number } | { share: number };

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: 2 ** 30,
  ti: 2 ** 40,
};

/** `0`, a byte count with an optional unit (`500Mi`, `20GiB`, `2G`), or a share of the disk (`10%`). */
export function parseByteSize(raw: string, flag: string): ByteSize {
  const text = raw.trim();
  const share = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (share !== null) {
    const percent = Number(share[1]);
    if (percent > 0 && percent <= 100) return { share: percent / 100 };
  }
  const size = /^(\d+(?:\.\d+)?)(?:([kmgt]i?)b?|b)?$/i.exec(text);
  const bytes = Math.floor(Number(size?.[1]) * (SIZE_UNITS[(size?.[2] ?? '').toLowerCase()] ?? Number.NaN));
  if (size !== null && Number.isSafeInteger(bytes)) return { bytes };
  throw new ConfigError(
    `--${flag}: expected a size (0, 500Mi, 20GiB) or a share of the disk from 0% to 100% (10%), got ${JSON.stringify(raw)}`,
  );
}

export function parseBoolean(raw: string, flag: string): boolean {
  const text = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(text)) return true;
  if (['false', '0', 'no'].includes(text)) return false;
  throw new ConfigError(`--${flag}: expected true or false, got ${JSON.stringify(raw)}`);
}

export function parseRegex(raw: string, flag: string): RegExp {
  try {
    return new RegExp(raw);
  } catch (cause) {
    throw new ConfigError(`--${flag}: invalid regular expression ${JSON.stringify(raw)}`, { cause });
  }
}

export function parseChoice<T extends string>(raw: string, flag: string, choices: readonly T[]): T {
  const found = choices.find((choice) => choice === raw.trim());
  if (found === undefined) {
    throw new ConfigError(`--${flag}: expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return found;
}

/**
 * An http(s) URL naming a registry or a mirror; path, query and credentials are not allowed. An IPv6 host
 * comes in brackets (`http://[fd00::1]:5000`), and so may an IPv4 one (`http://[10.0.0.5]:5000`), which
 * URLs otherwise refuse: so one template, `http://[$(NODE_IP)]:5000`, serves nodes of either family.
 */
export function parseRegistryUrl(raw: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim().replace(/^(https?:\/\/)\[(\d{1,3}(?:\.\d{1,3}){3})\]/i, '$1$2'));
  } catch (cause) {
    throw new ConfigError(`--${flag}: invalid URL ${JSON.stringify(raw)}`, { cause });
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search !== '' ||
    url.username !== ''
  ) {
    throw new ConfigError(`--${flag}: expected http(s)://host[:port], got ${JSON.stringify(raw)}`);
  }
  return url;
}

/** A registry host as containerd names it (docker.io, 127.0.0.1:5000). */
export function parseHostFlag(raw: string, flag: string): string {
  try {
    return parseRegistryHost(raw.trim());
  } catch (cause) {
    throw new ConfigError(`--${flag}: invalid registry host ${JSON.stringify(raw)}`, { cause });
  }
}

export function parseRepositoryFlag(raw: string, flag: string): string {
  try {
    return parseRepository(raw.trim());
  } catch (cause) {
    throw new ConfigError(`--${flag}: invalid repository ${JSON.stringify(raw)}`, { cause });
  }
}

/** An image reference as a pod names it (`nginx:1.27`, `ghcr.io/o/app:v1`, `…@sha256:…`). */
export function parseImageReferenceFlag(raw: string, flag: string): ImageReference {
  const parsed = parseImageReference(raw.trim());
  if (parsed === undefined)
    throw new ConfigError(
      `--${flag}: invalid image reference ${JSON.stringify(raw.slice(0, 80))} (e.g. docker.io/library/nginx:1.27)`,
    );
  return parsed;
}

/** A TCP multiaddr with an optional peer id: /ip4|ip6|dns4|dns6/<host>/tcp/<port>[/p2p/<id>]. */
export function parseMultiaddrFlag(raw: string, flag: string): string {
  const text = raw.trim();
  if (!/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d{1,5}(\/p2p\/[1-9A-HJ-NP-Za-km-z]+)?$/.test(text)) {
    throw new ConfigError(
      `--${flag}: expected /ip4/<host>/tcp/<port>[/p2p/<peer id>], got ${JSON.stringify(raw)}`,
    );
  }
  return text;
}
