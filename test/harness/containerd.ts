import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Child, run, waitFor } from './process.js';

/**
 * The CRI plugin's registry settings, for tests of what shoal's preflight reads (`crictl info`). Without
 * this option the plugin is disabled, as a plain containerd process needs no Kubernetes runtime.
 */
export interface CriOptions {
  /** `config_path` under `[plugins."io.containerd.grpc.v1.cri".registry]`; undefined leaves it unset. */
  configPath?: string;
  discardUnpackedLayers?: boolean;
}

/** A real containerd as a plain process, with its own root, state, sockets and opt dir. */
export class Containerd {
  readonly dir: string;
  readonly namespace: string;
  readonly #cri: CriOptions | undefined;
  #child: Child | undefined;

  /** `dir` must be short: unix socket paths are limited to 107 bytes. */
  constructor(dir: string, namespace = 'shoal-test', options: { cri?: CriOptions } = {}) {
    this.dir = dir;
    this.namespace = namespace;
    this.#cri = options.cri;
  }

  get configFile(): string {
    return join(this.dir, 'config.toml');
  }

  get socket(): string {
    return join(this.dir, 'c.sock');
  }

  get contentPath(): string {
    return join(this.dir, 'root', 'io.containerd.content.v1.content');
  }

  /** hosts.toml directory for pulls (`ctr --hosts-dir`). */
  get hostsDir(): string {
    return join(this.dir, 'certs.d');
  }

  /** The process id, or -1 when not running. */
  get pid(): number {
    return this.#child?.process.pid ?? -1;
  }

  get output(): string {
    return this.#child?.output ?? '';
  }

  async start(): Promise<void> {
    await mkdir(this.hostsDir, { recursive: true });
    const config = this.configFile;
    await writeFile(
      config,
      [
        'version = 2',
        `root = "${join(this.dir, 'root')}"`,
        `state = "${join(this.dir, 'state')}"`,
        ...(this.#cri === undefined ? ['disabled_plugins = ["io.containerd.grpc.v1.cri"]'] : []),
        '[grpc]',
        `  address = "${this.socket}"`,
        '[ttrpc]',
        `  address = "${join(this.dir, 't.sock')}"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${join(this.dir, 'opt')}"`,
        ...(this.#cri === undefined ? [] : criSection(this.dir, this.#cri)),
        '',
      ].join('\n'),
    );
    const child = new Child('containerd', ['--config', config]);
    this.#child = child;
    await waitFor(
      'containerd',
      async () => {
        await this.ctr(['version'], 2000);
        return true;
      },
      15_000,
      () => (child.running ? undefined : child.output),
    );
  }

  async stop(): Promise<void> {
    await this.#child?.stop();
    this.#child = undefined;
  }

  /** Runs `ctr` against this containerd in its namespace. */
  ctr(args: readonly string[], timeoutMs = 300_000): Promise<string> {
    return run('ctr', ['--address', this.socket, '--namespace', this.namespace, ...args], timeoutMs);
  }

  /** Pulls (and unpacks) an image, using this containerd's hosts dir for mirror config. */
  pull(ref: string, extra: readonly string[] = []): Promise<string> {
    return this.ctr(['images', 'pull', '--hosts-dir', this.hostsDir, ...extra, ref]);
  }

  /** `name → target digest` of every image. */
  async images(): Promise<Map<string, string>> {
    const out = await this.ctr(['images', 'list']);
    const result = new Map<string, string>();
    for (const line of out.split('\n').slice(1)) {
      const [name, , digest] = line.trim().split(/\s+/);
      if (name !== undefined && digest?.startsWith('sha256:')) result.set(name, digest);
    }
    return result;
  }

  /** Digests of every blob in the content store. */
  async contentDigests(): Promise<Set<string>> {
    const out = await this.ctr(['content', 'ls', '--quiet']);
    return new Set(out.split('\n').filter((line) => line.startsWith('sha256:')));
  }
}

/** The CRI plugin kept to loopback and the test's own directories: no TCP service, no CNI of the host's. */
function criSection(dir: string, cri: CriOptions): string[] {
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    '  disable_tcp_service = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    `    bin_dir = "${join(dir, 'cni', 'bin')}"`,
    `    conf_dir = "${join(dir, 'cni', 'conf')}"`,
    '  [plugins."io.containerd.grpc.v1.cri".containerd]',
    `    discard_unpacked_layers = ${cri.discardUnpackedLayers === true}`,
    ...(cri.configPath === undefined
      ? []
      : ['  [plugins."io.containerd.grpc.v1.cri".registry]', `    config_path = "${cri.configPath}"`]),
  ];
}
