import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerdClient } from '../containerd/client.js';
import { type CriSettings, criSettingsFromStatus, readCriSettingsFile } from '../containerd/cri-config.js';
import { readRegistryHosts } from '../containerd/hosts.js';
import type { Observed } from './checks.js';

/** What preflight asks of containerd. */
export type ContainerdProbe = Pick<ContainerdClient, 'version' | 'namespaceExists' | 'criConfig'>;

export interface ObserveInit {
  store: Observed['store'];
  socket: string;
  namespace: string;
  contentPath: string;
  /** `--containerd-registry-config-path`. */
  configDir: string;
  /** `--containerd-config`: read where the CRI plugin does not report its settings. */
  configFile: string;
  /** Mirrored registry hosts; empty: every registry (`_default`). */
  mirroredRegistries: readonly string[];
  targets: Observed['targets'];
  resolveTags: boolean;
}

/** Looks at containerd through its socket and at the files it reads; never throws. */
export async function observe(containerd: ContainerdProbe, init: ObserveInit): Promise<Observed> {
  const version = await containerd.version().then(
    (found) => ({ version: found }),
    (err: unknown) => ({ error: (err as Error).message }),
  );
  const reachable = 'version' in version;
  const registries = init.mirroredRegistries.length === 0 ? [undefined] : init.mirroredRegistries;
  return {
    store: init.store,
    socket: init.socket,
    containerd: version,
    namespace: {
      name: init.namespace,
      exists: reachable ? await containerd.namespaceExists(init.namespace).catch(() => undefined) : undefined,
    },
    content: { path: init.contentPath, error: await unreadable(init.contentPath) },
    settings: reachable
      ? await settings(containerd, init.configFile)
      : { error: 'containerd does not answer' },
    configDir: init.configDir,
    hosts: await Promise.all(
      registries.map(async (registry) => ({
        registry,
        found: await readRegistryHosts(init.configDir, registry),
      })),
    ),
    targets: init.targets,
    resolveTags: init.resolveTags,
  };
}

/** Why the content directory (and its blob directory, once containerd made it) cannot be listed. */
async function unreadable(contentPath: string): Promise<string | undefined> {
  try {
    await readdir(contentPath);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
  try {
    await readdir(join(contentPath, 'blobs', 'sha256'));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No blob directory yet: a containerd that has pulled nothing. What it writes will be readable.
    return code === 'ENOENT' ? undefined : (code ?? (err as Error).message);
  }
}

/**
 * The CRI settings from the CRI plugin's verbose status (containerd 1.x reports them all), completed from the
 * config file where the status says nothing of them (2.x reports only its runtime settings there).
 */
async function settings(
  containerd: ContainerdProbe,
  configFile: string,
): Promise<CriSettings | { error: string }> {
  const status = await containerd.criConfig();
  let reported: CriSettings | undefined;
  let statusError: string | undefined;
  if ('config' in status) {
    try {
      reported = criSettingsFromStatus(status.config);
    } catch (err) {
      statusError = `the CRI status is not JSON (${(err as Error).message})`;
    }
  } else statusError = status.error;
  if (reported?.configPath !== undefined && reported.discardUnpackedLayers !== undefined) return reported;
  try {
    const file = await readCriSettingsFile(configFile);
    return reported === undefined
      ? file
      : {
          from: `${reported.from} and ${file.from}`,
          configPath: reported.configPath ?? file.configPath,
          discardUnpackedLayers: reported.discardUnpackedLayers ?? file.discardUnpackedLayers,
          useLocalImagePull: reported.useLocalImagePull ?? file.useLocalImagePull,
        };
  } catch (err) {
    if (reported !== undefined) return reported;
    return {
      error: `the CRI plugin did not say (${statusError}), and ${configFile} could not be read (${(err as Error).message})`,
    };
  }
}
