import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './process.js';

/** One registries.conf mirror: pulls of `registry` go to `mirror` (`host:port/path`) first. */
export interface MirrorEntry {
  registry: string;
  mirror: string;
}

/** The command, its wall time and what it printed. */
export interface Timed {
  ms: number;
  output: string;
}

/**
 * Real podman (Debian's 4.3) and skopeo as a user runs them, in a temporary root: rootful, vfs storage, a
 * registries.conf of the test's own (CONTAINERS_REGISTRIES_CONF), nothing of the machine's.
 */
export class GoClients {
  readonly #dir: string;
  readonly #conf: string;

  constructor(dir: string) {
    this.#dir = dir;
    this.#conf = join(dir, 'registries.conf');
  }

  async configure(mirrors: readonly MirrorEntry[]): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const entries = mirrors.map(({ registry, mirror }) =>
      [
        '[[registry]]',
        `prefix = "${registry}"`,
        `location = "${registry}"`,
        'insecure = true',
        '[[registry.mirror]]',
        `location = "${mirror}"`,
        'insecure = true',
        '',
      ].join('\n'),
    );
    await writeFile(this.#conf, ['unqualified-search-registries = []', '', ...entries].join('\n'));
  }

  podman(args: readonly string[]): Promise<Timed> {
    return this.#timed('podman', [
      '--root',
      join(this.#dir, 'root'),
      '--runroot',
      join(this.#dir, 'runroot'),
      '--storage-driver',
      'vfs',
      '--events-backend',
      'file',
      '--cgroup-manager',
      'cgroupfs',
      ...args,
    ]);
  }

  skopeo(args: readonly string[]): Promise<Timed> {
    return this.#timed('skopeo', ['--insecure-policy', ...args]);
  }

  async #timed(command: string, args: readonly string[]): Promise<Timed> {
    const started = performance.now();
    const output = await run(command, [...args], 60_000, {
      ...process.env,
      CONTAINERS_REGISTRIES_CONF: this.#conf,
      TMPDIR: this.#dir,
    });
    return { ms: Math.round(performance.now() - started), output };
  }
}
