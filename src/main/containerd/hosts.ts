import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { ConfigError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export const BACKUP_DIR = '_backup';
export const DEFAULT_HOST_DIR = '_default';

export interface HostsConfigInit {
  /** containerd's registry `config_path`. */
  configPath: string;
  /** Registries to mirror; empty writes `_default`, which covers every registry. */
  mirroredRegistries: readonly URL[];
  /** Mirrors, in the order containerd should try them. */
  mirrorTargets: readonly URL[];
  /** Whether mirrors may resolve tags; otherwise containerd resolves tags upstream. */
  resolveTags: boolean;
  /** Keep mirrors the existing config had, after shoal's. */
  prependExisting: boolean;
  /** dial_timeout for each mirror, in ms. */
  dialTimeoutMs: number;
  /** Told when existing mirrors cannot be kept (they would make the file invalid TOML). */
  warn?: (message: string) => void;
}

/** containerd's directory name for a registry: host[:port]. */
export function hostDirName(registry: URL): string {
  return registry.host;
}

/** The upstream containerd falls back to; Docker Hub's API lives on another host than its name. */
export function upstreamServer(registry: URL): string {
  if (registry.host === 'docker.io') return 'https://registry-1.docker.io';
  return `${registry.protocol}//${registry.host}`;
}

function origin(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Renders one hosts.toml. Pure: the same input always gives the same bytes. */
export function renderHostsToml(
  registry: URL | undefined,
  init: Pick<HostsConfigInit, 'mirrorTargets' | 'resolveTags' | 'dialTimeoutMs'>,
  existingHosts: string,
): string {
  const capabilities = init.resolveTags ? '["pull", "resolve"]' : '["pull"]';
  const lines: string[] = [];
  if (registry !== undefined) lines.push(`server = "${upstreamServer(registry)}"`, '');
  for (const target of init.mirrorTargets) {
    lines.push(
      `[host."${origin(target)}"]`,
      `  capabilities = ${capabilities}`,
      `  dial_timeout = "${formatDuration(init.dialTimeoutMs)}"`,
      '',
    );
  }
  const own = lines.join('\n');
  const kept = existingHosts.trim();
  if (kept === '') return own;
  // Existing tables are kept verbatim only when the whole file stays valid TOML (they may be malformed, or
  // name shoal's own mirror again): containerd cannot read a broken file, and pulls of the registry fail.
  const whole = [...lines, kept, ''].join('\n');
  try {
    parse(whole);
    return whole;
  } catch {
    return own;
  }
}

/** The `[host."…"]` tables of an existing hosts.toml, verbatim (everything from the first table on). */
export function hostTables(toml: string): string {
  const start = toml.search(/^[ \t]*\[host\./m);
  return start === -1 ? '' : toml.slice(start);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes `configPath/<host>/hosts.toml` for every mirrored registry (or `_default`). What was there
 * before shoal's first run is moved to `_backup` once, so `cleanupHostsConfig` can restore it.
 * Returns the files written.
 */
export async function writeHostsConfig(init: HostsConfigInit): Promise<string[]> {
  if (init.mirrorTargets.length === 0)
    throw new ConfigError('--mirror-targets: at least one mirror is needed');
  const backup = join(init.configPath, BACKUP_DIR);
  await mkdir(init.configPath, { recursive: true });
  if (!(await exists(backup))) {
    await mkdir(`${backup}.new`, { recursive: true });
    for (const entry of await readdir(init.configPath)) {
      if (entry !== `${BACKUP_DIR}.new`)
        await rename(join(init.configPath, entry), join(`${backup}.new`, entry));
    }
    // The rename makes the backup appear whole or not at all.
    await rename(`${backup}.new`, backup);
  }
  for (const entry of await readdir(init.configPath)) {
    if (entry !== BACKUP_DIR) await rm(join(init.configPath, entry), { recursive: true, force: true });
  }
  const registries: Array<URL | undefined> =
    init.mirroredRegistries.length === 0 ? [undefined] : [...init.mirroredRegistries];
  const written: string[] = [];
  for (const registry of registries) {
    const dirName = registry === undefined ? DEFAULT_HOST_DIR : hostDirName(registry);
    let existing = '';
    if (init.prependExisting) {
      existing = hostTables(await readFile(join(backup, dirName, 'hosts.toml'), 'utf8').catch(() => ''));
    }
    const dir = join(init.configPath, dirName);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'hosts.toml');
    const text = renderHostsToml(registry, init, existing);
    if (existing.trim() !== '' && !text.includes(existing.trim()))
      init.warn?.(`${file}: the mirrors it had are left out: with them the file is not valid TOML`);
    await writeFileAtomic(file, text);
    written.push(file);
  }
  return written;
}

/** Removes shoal's hosts config and puts back what was there before shoal first wrote it. */
export async function cleanupHostsConfig(configPath: string): Promise<void> {
  const backup = join(configPath, BACKUP_DIR);
  if (!(await exists(backup))) return;
  for (const entry of await readdir(configPath)) {
    if (entry !== BACKUP_DIR) await rm(join(configPath, entry), { recursive: true, force: true });
  }
  for (const entry of await readdir(backup)) await rename(join(backup, entry), join(configPath, entry));
  await rm(backup, { recursive: true, force: true });
}

/** One mirror a hosts.toml lists: its URL and what containerd may ask it for. */
export interface ListedMirror {
  url: string;
  capabilities: string[];
}

/** What containerd reads for one registry: the hosts.toml it uses (its own, else `_default`), or none. */
export interface RegistryHosts {
  /** The file containerd reads for the registry; undefined when neither its own nor `_default` exists. */
  file: string | undefined;
  /** The mirrors it lists, in the order containerd tries them. */
  mirrors: ListedMirror[];
  /** Why the file could not be used (unreadable, not TOML), when it exists but could not be read. */
  error?: string;
}

/**
 * The mirrors containerd would use for `registry` (a host as containerd names it; undefined: `_default`),
 * read from `configPath` the way containerd looks them up: `<host>/hosts.toml`, else `_default/hosts.toml`.
 * A host table without `capabilities` gets containerd's default, pull and resolve.
 */
export async function readRegistryHosts(
  configPath: string,
  registry: string | undefined,
): Promise<RegistryHosts> {
  const names = registry === undefined ? [DEFAULT_HOST_DIR] : [registry, DEFAULT_HOST_DIR];
  for (const name of names) {
    const file = join(configPath, name, 'hosts.toml');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return { file, mirrors: [], error: (err as Error).message };
    }
    try {
      const hosts = (parse(text) as { host?: Record<string, { capabilities?: unknown }> }).host ?? {};
      const mirrors = Object.entries(hosts).map(([url, entry]) => ({
        url,
        capabilities: Array.isArray(entry?.capabilities)
          ? entry.capabilities.filter((c): c is string => typeof c === 'string')
          : ['pull', 'resolve'],
      }));
      return { file, mirrors };
    } catch (err) {
      return { file, mirrors: [], error: `not valid TOML: ${(err as Error).message}` };
    }
  }
  return { file: undefined, mirrors: [] };
}
