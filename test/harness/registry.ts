import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Child, freePort, waitFor } from './process.js';

/** How the registry authenticates pulls: htpasswd (Basic) or a token service (Bearer). */
export type RegistryAuth =
  | { kind: 'htpasswd'; path: string }
  | { kind: 'token'; realm: string; service: string; issuer: string; rootCertBundle: string };

/**
 * A CNCF distribution registry (`docker-registry serve`) on a loopback address (127.0.0.1 unless told) with
 * its own storage. On port 80 its name has no port (`127.0.0.2`), as a registry named in a path must.
 */
export class DistributionRegistry {
  readonly dir: string;
  readonly #auth: RegistryAuth | undefined;
  readonly address: string;
  port = 0;
  #child: Child | undefined;
  readonly #exec: ((command: string, args: string[]) => [string, string[]]) | undefined;
  readonly #probe: (() => Promise<string>) | undefined;

  constructor(
    dir: string,
    options: {
      auth?: RegistryAuth;
      address?: string;
      port?: number;
      /** Runs the registry elsewhere (a network namespace of a shaped network): the command line to use. */
      exec?: (command: string, args: string[]) => [string, string[]];
      /** The registry's URL as this process reaches it, when `url` does not (it runs in a namespace). */
      probe?: () => Promise<string>;
    } = {},
  ) {
    this.dir = dir;
    this.#auth = options.auth;
    this.address = options.address ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.#exec = options.exec;
    this.#probe = options.probe;
  }

  /** host[:port], as containerd names the registry. */
  get host(): string {
    return this.port === 80 ? this.address : `${this.address}:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  /** Everything the registry printed, including its access log. */
  /** The process id, or -1 when not running. */
  get pid(): number {
    return this.#child?.process.pid ?? -1;
  }

  get output(): string {
    return this.#child?.output ?? '';
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    await mkdir(join(this.dir, 'data'), { recursive: true });
    const config = join(this.dir, 'config.yml');
    await writeFile(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: info',
        '  accesslog:',
        '    disabled: false',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(this.dir, 'data')}`,
        'http:',
        `  addr: ${this.address}:${this.port}`,
        ...authConfig(this.#auth),
        '',
      ].join('\n'),
    );
    const [command, args] = this.#exec?.('docker-registry', ['serve', config]) ?? [
      'docker-registry',
      ['serve', config],
    ];
    const child = new Child(command, args);
    this.#child = child;
    const url = (await this.#probe?.()) ?? this.url;
    await waitFor(
      'distribution registry',
      // With auth on, an anonymous /v2/ answers 401: that too means the registry is up.
      async () => [200, 401].includes((await fetch(`${url}/v2/`)).status),
      15_000,
      () => (child.running ? undefined : child.output),
    );
  }

  async stop(): Promise<void> {
    await this.#child?.stop();
    this.#child = undefined;
  }
}

function authConfig(auth: RegistryAuth | undefined): string[] {
  if (auth === undefined) return [];
  if (auth.kind === 'htpasswd') {
    return ['auth:', '  htpasswd:', '    realm: shoal-test', `    path: ${auth.path}`];
  }
  return [
    'auth:',
    '  token:',
    `    realm: ${auth.realm}`,
    `    service: ${auth.service}`,
    `    issuer: ${auth.issuer}`,
    `    rootcertbundle: ${auth.rootCertBundle}`,
  ];
}
