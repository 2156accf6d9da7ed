import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';

/** What a registry asked for in `WWW-Authenticate`. */
export type Challenge =
  | { scheme: 'bearer'; realm: string; service: string | undefined }
  | { scheme: 'basic' };

/** One registry's entry in a docker `config.json`. */
export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** A registry token, sent as is (`registrytoken`). */
  | { kind: 'registry-token'; token: string }
  /** An OAuth2 refresh token, traded at the realm for access tokens (`identitytoken`). */
  | { kind: 'identity-token'; token: string };

/**
 * Parses `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`; undefined for
 * anything else. Quoted values may contain commas.
 */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const scheme = match?.[1]?.toLowerCase();
  if (scheme === 'basic') return { scheme: 'basic' };
  if (scheme !== 'bearer') return undefined;
  const params = new Map<string, string>();
  for (const part of (match?.[2] ?? '').matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    // A quoted value's quoted-pairs (`\"`, `\\`) stand for the character after the backslash (RFC 9110 §5.6.4).
    const quoted = part[2]?.replace(/\\(.)/gs, '$1');
    params.set((part[1] ?? '').toLowerCase(), quoted ?? part[3] ?? '');
  }
  const realm = params.get('realm');
  if (realm === undefined || !/^https?:\/\//.test(realm)) return undefined;
  return { scheme: 'bearer', realm, service: params.get('service') };
}

/** Names a docker config may file a registry under: `docker.io` has several historical ones. */
function configKeys(registry: string): string[] {
  if (registry === 'docker.io') {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  }
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`];
}

/** Credentials by registry, read once from a docker `config.json` (`--registry-credentials`). */
export class CredentialStore {
  readonly #byKey: ReadonlyMap<string, Credential>;

  constructor(byKey: ReadonlyMap<string, Credential> = new Map()) {
    this.#byKey = byKey;
  }

  /** Reads a docker config; any problem is a ConfigError naming the flag (never the secret). */
  static async load(path: string): Promise<CredentialStore> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (cause) {
      throw new ConfigError(`--registry-credentials: cannot read ${path} as JSON`, { cause });
    }
    const auths = (parsed as { auths?: unknown }).auths;
    if (typeof auths !== 'object' || auths === null) {
      throw new ConfigError(`--registry-credentials: ${path} has no "auths" object`);
    }
    const byKey = new Map<string, Credential>();
    for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
      const credential = toCredential(entry);
      if (credential === undefined) {
        throw new ConfigError(
          `--registry-credentials: the entry for ${JSON.stringify(key)} has no usable credential`,
        );
      }
      byKey.set(
        key.replace(/\/+$/, '') === 'https://index.docker.io/v1' ? 'https://index.docker.io/v1/' : key,
        credential,
      );
    }
    return new CredentialStore(byKey);
  }

  get(registry: string): Credential | undefined {
    for (const key of configKeys(registry)) {
      const found = this.#byKey.get(key);
      if (found !== undefined) return found;
    }
    return undefined;
  }
}

function toCredential(entry: unknown): Credential | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const fields = entry as Record<string, unknown>;
  const text = (name: string): string | undefined =>
    typeof fields[name] === 'string' && fields[name] !== '' ? (fields[name] as string) : undefined;
  const registryToken = text('registrytoken');
  if (registryToken !== undefined) return { kind: 'registry-token', token: registryToken };
  const identityToken = text('identitytoken');
  if (identityToken !== undefined) return { kind: 'identity-token', token: identityToken };
  const auth = text('auth');
  if (auth !== undefined) {
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  const username = text('username');
  const password = text('password');
  return username !== undefined && password !== undefined ? { kind: 'basic', username, password } : undefined;
}

export function basicHeader(credential: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}
