import { ConfigError } from '../errors.js';
import { parseBoolean } from './values.js';

/** One setting: its parser, default and help. Flag name and env var are derived from the key. */
export interface Flag<T> {
  readonly help: string;
  readonly kind: 'value' | 'bool' | 'list';
  readonly defaultValue: T;
  /** How the default is shown in help, when the value itself is not readable. */
  readonly defaultText?: string;
  /** Parses one raw value; list flags call it per element and collect. */
  parse(raw: string, flag: string): unknown;
}

export type FlagSet = Readonly<Record<string, Flag<unknown>>>;
export type FlagValues<S extends FlagSet> = {
  readonly [K in keyof S]: S[K] extends Flag<infer T> ? T : never;
};

export function value<T>(defaultValue: T, parse: (raw: string, flag: string) => T, help: string): Flag<T> {
  return { help, kind: 'value', defaultValue, parse };
}

export function bool(defaultValue: boolean, help: string): Flag<boolean> {
  return { help, kind: 'bool', defaultValue, parse: parseBoolean };
}

export function list<T>(parseOne: (raw: string, flag: string) => T, help: string): Flag<readonly T[]> {
  return { help, kind: 'list', defaultValue: [], parse: parseOne };
}

/**
 * Flags that are gone, with what replaced them: given on the command line or as their env var, they are
 * refused with that message rather than ignored, so an old manifest fails loudly instead of half-working.
 */
const REMOVED_FLAGS: Readonly<Record<string, string>> = {
  'registry-blob-addr':
    'removed: --registry-addr serves blob bytes too (one registry port); drop the flag and hostPort 5003',
};

/** registryAddr → registry-addr */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** registryAddr → REGISTRY_ADDR (Spegel's env names carry no prefix). */
export function envName(key: string): string {
  return envOfFlag(flagName(key));
}

/** registry-addr → REGISTRY_ADDR */
function envOfFlag(name: string): string {
  return name.replace(/-/g, '_').toUpperCase();
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/**
 * Parses argv (flags only; the command word is already consumed) and env against a flag set. Flags win
 * over env vars, env vars over defaults. List flags take repeats, commas, or several words after the flag.
 * Returns the frozen values and the positional arguments.
 */
export function parseFlags<S extends FlagSet>(
  spec: S,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { values: FlagValues<S>; positional: string[] } {
  const byName = new Map(Object.keys(spec).map((key) => [flagName(key), key]));
  const fromArgs = new Map<string, unknown>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const removed = REMOVED_FLAGS[name];
    if (removed !== undefined) throw new ConfigError(`--${name}: ${removed}`);
    const key = byName.get(name);
    const flag = key === undefined ? undefined : spec[key];
    if (key === undefined || flag === undefined)
      throw new ConfigError(`--${name}: unknown flag (see --help)`);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    if (flag.kind === 'bool') {
      fromArgs.set(key, inline === undefined ? true : flag.parse(inline, name));
    } else if (flag.kind === 'value') {
      const raw = inline ?? argv[++i];
      if (raw === undefined) throw new ConfigError(`--${name}: missing value`);
      fromArgs.set(key, flag.parse(raw, name));
    } else {
      const items = (fromArgs.get(key) as unknown[] | undefined) ?? [];
      const words = inline !== undefined ? [inline] : [];
      while (inline === undefined && i + 1 < argv.length && !(argv[i + 1] ?? '').startsWith('--')) {
        words.push(argv[++i] ?? '');
      }
      if (words.length === 0) throw new ConfigError(`--${name}: missing value`);
      for (const word of words) for (const item of splitList(word)) items.push(flag.parse(item, name));
      fromArgs.set(key, items);
    }
  }
  for (const [name, removed] of Object.entries(REMOVED_FLAGS)) {
    const variable = envOfFlag(name);
    if ((env[variable] ?? '') !== '') throw new ConfigError(`--${name}: ${removed} (from $${variable})`);
  }
  const values: Record<string, unknown> = {};
  for (const [key, flag] of Object.entries(spec)) {
    const raw = env[envName(key)];
    let fromEnv: unknown;
    if (raw !== undefined && raw !== '' && !fromArgs.has(key)) {
      const name = flagName(key);
      try {
        fromEnv =
          flag.kind === 'list' ? splitList(raw).map((item) => flag.parse(item, name)) : flag.parse(raw, name);
      } catch (err) {
        throw new ConfigError(`${(err as Error).message} (from $${envName(key)})`, { cause: err });
      }
    }
    values[key] = fromArgs.has(key) ? fromArgs.get(key) : (fromEnv ?? flag.defaultValue);
  }
  return { values: Object.freeze(values) as FlagValues<S>, positional };
}

function showDefault(flag: Flag<unknown>): string {
  if (flag.defaultText !== undefined) return flag.defaultText;
  const shown = flag.defaultValue;
  if (Array.isArray(shown)) return shown.length === 0 ? '' : shown.join(',');
  if (shown === undefined) return '';
  return String(shown);
}

/** Renders help: one line per flag with its env var and default. */
export function renderHelp(usage: string, spec: FlagSet): string {
  const lines = [usage, '', 'Flags:'];
  for (const [key, flag] of Object.entries(spec)) {
    const shown = showDefault(flag);
    const suffix = shown === '' ? '' : ` (default ${shown})`;
    lines.push(`  --${flagName(key)}  [$${envName(key)}]`, `      ${flag.help}${suffix}`);
  }
  return lines.join('\n');
}
