import type { CriSettings } from '../containerd/cri-config.js';
import type { RegistryHosts } from '../containerd/hosts.js';

/** Every check preflight makes, by the id `shoal_preflight_ok{check}` and the debug page use. */
export type CheckId =
  | 'store'
  | 'containerd_socket'
  | 'containerd_namespace'
  | 'content_directory'
  | 'registry_config_path'
  | 'hosts_toml'
  | 'discard_unpacked_layers'
  | 'local_image_pull';

export interface CheckResult {
  check: CheckId;
  ok: boolean;
  /** What was found, in a sentence. */
  summary: string;
  /** What to change, when the check failed. */
  fix?: string;
}

/** What preflight saw of the node's containerd and its configuration. */
export interface Observed {
  store: { requested: 'auto' | 'containerd' | 'embedded'; serving: 'containerd' | 'embedded' };
  socket: string;
  /** containerd's answer on the socket: its version, or why it did not answer. */
  containerd: { version: string } | { error: string };
  namespace: { name: string; exists: boolean | undefined };
  content: { path: string; error: string | undefined };
  /** containerd's CRI settings, or why neither the CRI plugin nor the config file told them. */
  settings: CriSettings | { error: string };
  /** `--containerd-registry-config-path`: where shoal wrote hosts.toml. */
  configDir: string;
  /** For each mirrored registry (undefined: every registry, `_default`), what containerd reads there. */
  hosts: Array<{ registry: string | undefined; found: RegistryHosts }>;
  /** What counts as this node in a hosts.toml: these origins, or any http mirror on this port. */
  targets: { origins: string[] } | { port: number };
  resolveTags: boolean;
}

/** `major.minor` of a containerd version string (`v1.6.20`, `1.6.20~ds1`, `2.1.4`), or undefined. */
export function minorVersion(version: string): [number, number] | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(version.trim());
  return match === null ? undefined : [Number(match[1]), Number(match[2])];
}

/** An origin as hosts.toml names it, normalised: scheme, host and explicit port. */
export function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    const port = parsed.port !== '' ? parsed.port : parsed.protocol === 'https:' ? '443' : '80';
    return `${parsed.protocol}//${parsed.hostname}:${port}`;
  } catch {
    return undefined;
  }
}

const RESTART = 'then restart containerd';
const CRI_TABLE =
  '[plugins."io.containerd.grpc.v1.cri".registry] (containerd 1.x) or [plugins."io.containerd.cri.v1.images".registry] (2.x)';

/** Judges what was seen: one result per check, each failure with its fix. Pure, so every case is testable. */
export function evaluate(seen: Observed): CheckResult[] {
  const results: CheckResult[] = [storeCheck(seen)];
  if (seen.store.requested === 'embedded') return results;
  results.push(socketCheck(seen));
  if ('error' in seen.containerd) return results;
  results.push(namespaceCheck(seen), contentCheck(seen), configPathCheck(seen), hostsCheck(seen));
  results.push(discardCheck(seen));
  const version = minorVersion(seen.containerd.version);
  if (version !== undefined && (version[0] > 2 || (version[0] === 2 && version[1] >= 1)))
    results.push(localPullCheck(seen));
  return results;
}

function storeCheck(seen: Observed): CheckResult {
  if (seen.store.serving === 'containerd' || seen.store.requested === 'embedded')
    return { check: 'store', ok: true, summary: `serving from the ${seen.store.serving} store` };
  return {
    check: 'store',
    ok: false,
    summary: `--store auto found no containerd at ${seen.socket}: this node serves an empty embedded store, so containerd’s own images are never shared`,
    fix: `mount containerd’s socket at --containerd-sock (k3s: /run/k3s/containerd/containerd.sock), or set --store embedded where the node has no containerd`,
  };
}

function socketCheck(seen: Observed): CheckResult {
  if ('version' in seen.containerd)
    return {
      check: 'containerd_socket',
      ok: true,
      summary: `containerd ${seen.containerd.version} answers at ${seen.socket}`,
    };
  return {
    check: 'containerd_socket',
    ok: false,
    summary: `containerd does not answer at ${seen.socket}: ${seen.containerd.error}`,
    fix: 'point --containerd-sock at containerd’s gRPC socket and mount it into the pod (its directory, so a restart of containerd is seen)',
  };
}

function namespaceCheck(seen: Observed): CheckResult {
  const { name, exists } = seen.namespace;
  if (exists === true)
    return { check: 'containerd_namespace', ok: true, summary: `namespace ${name} exists` };
  return {
    check: 'containerd_namespace',
    ok: false,
    summary:
      exists === false
        ? `containerd has no namespace ${name}: nothing is served from it`
        : `could not ask containerd for namespace ${name}`,
    fix: '--containerd-namespace must name the namespace the kubelet pulls into: k8s.io',
  };
}

function contentCheck(seen: Observed): CheckResult {
  const { path, error } = seen.content;
  if (error === undefined)
    return { check: 'content_directory', ok: true, summary: `content directory ${path} is readable` };
  return {
    check: 'content_directory',
    ok: false,
    summary: `content directory ${path} cannot be read (${error}): every blob is read through gRPC instead, several times slower`,
    fix: 'mount containerd’s content directory read-only at --containerd-content-path, and run as a user that may read it (root)',
  };
}

function configPathCheck(seen: Observed): CheckResult {
  const settings = seen.settings;
  if ('error' in settings) {
    return {
      check: 'registry_config_path',
      ok: false,
      summary: `cannot tell containerd’s registry config_path: ${settings.error}`,
      fix: 'mount containerd’s config file at --containerd-config (the CRI plugin reports it only on containerd 1.x)',
    };
  }
  const paths = (settings.configPath ?? '').split(':').filter((path) => path !== '');
  if (paths.includes(seen.configDir))
    return {
      check: 'registry_config_path',
      ok: true,
      summary: `containerd reads hosts.toml from ${settings.configPath} (${settings.from})`,
    };
  return {
    check: 'registry_config_path',
    ok: false,
    summary:
      paths.length === 0
        ? `containerd’s registry config_path is not set (${settings.from}): it never reads hosts.toml, so no pull reaches shoal`
        : `containerd reads hosts.toml from ${settings.configPath} (${settings.from}), not from ${seen.configDir} where shoal writes them`,
    fix: `set config_path = "${seen.configDir}" under ${CRI_TABLE}, ${RESTART}`,
  };
}

function hostsCheck(seen: Observed): CheckResult {
  const problems: string[] = [];
  const wanted = seen.resolveTags ? ['pull', 'resolve'] : ['pull'];
  const isThisNode = (url: string): boolean => {
    const origin = originOf(url);
    if (origin === undefined) return false;
    if ('origins' in seen.targets) return seen.targets.origins.some((target) => originOf(target) === origin);
    return origin.startsWith('http://') && origin.endsWith(`:${seen.targets.port}`);
  };
  for (const { registry, found } of seen.hosts) {
    const name = registry ?? 'every registry (_default)';
    if (found.error !== undefined) problems.push(`${name}: ${found.file} ${found.error}`);
    else if (found.file === undefined) problems.push(`${name}: no hosts.toml`);
    else {
      const mirror = found.mirrors.find((entry) => isThisNode(entry.url));
      if (mirror === undefined)
        problems.push(
          `${name}: ${found.file} lists ${found.mirrors.map((entry) => entry.url).join(', ') || 'no mirror'}, not this node`,
        );
      else if (!wanted.every((capability) => mirror.capabilities.includes(capability)))
        problems.push(`${name}: ${mirror.url} may only ${mirror.capabilities.join(', ')}`);
    }
  }
  const who =
    'origins' in seen.targets ? seen.targets.origins.join(', ') : `http://<node>:${seen.targets.port}`;
  if (problems.length === 0)
    return {
      check: 'hosts_toml',
      ok: true,
      summary: `hosts.toml in ${seen.configDir} sends every mirrored registry to ${who}`,
    };
  return {
    check: 'hosts_toml',
    ok: false,
    summary: `containerd is not pointed at this node (${who}) for: ${problems.join('; ')}`,
    fix: `run shoal configuration --containerd-registry-config-path ${seen.configDir} --mirror-targets <this node's registry URL> with the same --mirrored-registries (the DaemonSet's init container does), or set --mirror-targets here to what hosts.toml names`,
  };
}

function discardCheck(seen: Observed): CheckResult {
  const settings = seen.settings;
  if ('error' in settings || settings.discardUnpackedLayers === undefined)
    return {
      check: 'discard_unpacked_layers',
      ok: true,
      summary: 'discard_unpacked_layers is not set (off)',
    };
  if (!settings.discardUnpackedLayers)
    return {
      check: 'discard_unpacked_layers',
      ok: true,
      summary: `discard_unpacked_layers is off (${settings.from})`,
    };
  return {
    check: 'discard_unpacked_layers',
    ok: false,
    summary: `discard_unpacked_layers is on (${settings.from}): containerd deletes layers once unpacked, so this node has little to share`,
    fix: `set discard_unpacked_layers = false in containerd’s CRI configuration, ${RESTART}`,
  };
}

function localPullCheck(seen: Observed): CheckResult {
  const settings = seen.settings;
  const on = !('error' in settings) && settings.useLocalImagePull === true;
  if (on) return { check: 'local_image_pull', ok: true, summary: 'use_local_image_pull is on' };
  return {
    check: 'local_image_pull',
    ok: false,
    summary: `containerd ${'version' in seen.containerd ? seen.containerd.version : ''} pulls through its transfer service unless use_local_image_pull is on; users found mirrors ignored without it (Spegel #1272)`,
    fix: `set use_local_image_pull = true under [plugins."io.containerd.cri.v1.images"], ${RESTART}`,
  };
}
