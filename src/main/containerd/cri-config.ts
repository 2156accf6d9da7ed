import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { parse } from 'smol-toml';

/** The CRI settings a mirror depends on, as containerd reports them or its config file sets them. */
export interface CriSettings {
  /** Where they were read: the CRI plugin's verbose status, or the config file (its path). */
  from: string;
  /** The registry `config_path` (one or more directories, `:`-separated); undefined or '' when not set. */
  configPath: string | undefined;
  /** `discard_unpacked_layers`: true lets containerd delete layers once unpacked, leaving nothing to share. */
  discardUnpackedLayers: boolean | undefined;
  /** containerd 2.1+: `use_local_image_pull` (undefined when the source does not say). */
  useLocalImagePull: boolean | undefined;
}

type Table = Record<string, unknown>;

function table(value: unknown): Table | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Table) : undefined;
}

function at(root: unknown, path: readonly string[]): unknown {
  let value = root;
  for (const key of path) value = table(value)?.[key];
  return value;
}

const asString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const asBoolean = (value: unknown): boolean | undefined => (typeof value === 'boolean' ? value : undefined);

/**
 * The settings in a verbose CRI `Status` answer's `config` JSON. containerd 1.x reports them there
 * (`registry.configPath`, `containerd.discardUnpackedLayers`); 2.x reports only the runtime's half, so the
 * image settings read undefined and the config file has to tell.
 */
export function criSettingsFromStatus(json: string): CriSettings {
  const config = JSON.parse(json) as unknown;
  return {
    from: 'the CRI plugin’s status',
    configPath: asString(at(config, ['registry', 'configPath'])),
    discardUnpackedLayers: asBoolean(at(config, ['containerd', 'discardUnpackedLayers'])),
    useLocalImagePull: asBoolean(at(config, ['useLocalImagePull'])),
  };
}

/** Where each config version keeps the image settings. */
const LAYOUTS: Record<number, { registry: string[]; discard: string[]; localPull: string[] | undefined }> = {
  1: {
    registry: ['plugins', 'cri', 'registry'],
    discard: ['plugins', 'cri', 'containerd'],
    localPull: undefined,
  },
  2: {
    registry: ['plugins', 'io.containerd.grpc.v1.cri', 'registry'],
    discard: ['plugins', 'io.containerd.grpc.v1.cri', 'containerd'],
    localPull: undefined,
  },
  3: {
    registry: ['plugins', 'io.containerd.cri.v1.images', 'registry'],
    discard: ['plugins', 'io.containerd.cri.v1.images'],
    localPull: ['plugins', 'io.containerd.cri.v1.images'],
  },
};

/** The settings one parsed config document sets (version 1, 2 or 3 of containerd's format). */
export function criSettingsFromToml(doc: Table, from: string): CriSettings {
  const version = typeof doc.version === 'number' ? doc.version : 1;
  const layout = LAYOUTS[version] ?? LAYOUTS[3];
  return {
    from,
    configPath: asString(at(doc, [...(layout?.registry ?? []), 'config_path'])),
    discardUnpackedLayers: asBoolean(at(doc, [...(layout?.discard ?? []), 'discard_unpacked_layers'])),
    useLocalImagePull:
      layout?.localPull === undefined
        ? undefined
        : asBoolean(at(doc, [...layout.localPull, 'use_local_image_pull'])),
  };
}

/** Copies `over` onto `base`, table by table, as containerd merges an imported file into its config. */
function merge(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const a = table(out[key]);
    const b = table(value);
    out[key] = a !== undefined && b !== undefined ? merge(a, b) : value;
  }
  return out;
}

/** The files an `imports` entry names: a path, or a `*` pattern in its last part (`conf.d/*.toml`). */
async function importedFiles(entry: string, relativeTo: string): Promise<string[]> {
  const path = isAbsolute(entry) ? entry : join(dirname(relativeTo), entry);
  if (!basename(path).includes('*')) return [path];
  const pattern = new RegExp(
    `^${basename(path)
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')}$`,
  );
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  return names
    .filter((name) => pattern.test(name))
    .sort()
    .map((name) => join(dirname(path), name));
}

/**
 * Reads containerd's config file and the files its `imports` name (each merged on top of the main file, in
 * order, as containerd does). Throws when the main file cannot be read or parsed.
 */
export async function readCriSettingsFile(path: string): Promise<CriSettings> {
  let doc = parse(await readFile(path, 'utf8')) as Table;
  const imports = Array.isArray(doc.imports) ? doc.imports.filter((entry) => typeof entry === 'string') : [];
  for (const entry of imports)
    for (const file of await importedFiles(entry, path)) {
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text !== undefined) doc = merge(doc, parse(text) as Table);
    }
  return criSettingsFromToml(doc, path);
}
