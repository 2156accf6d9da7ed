import { join } from 'node:path';
import type { RegistryConfig } from '../config/commands.js';
import { ContainerdClient } from '../containerd/client.js';
import { ContainerdStore } from '../containerd/store.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { type SideRoute, SideServer } from '../registry/side-server.js';
import { type Bootstrapper, dnsBootstrap, httpBootstrap, staticBootstrap } from '../routing/bootstrap.js';
import { resolveByteSize } from '../store/disk.js';
import { EmbeddedStore } from '../store/embedded.js';
import type { ContentStore } from '../store/store.js';
import { VerifyPool } from '../verify/pool.js';

/** Counts what an embedded store evicts to stay under --cache-max-bytes. */
/** An embedded store at `dir`, bounded by --cache-max-bytes, counting into `metrics`. */
async function embeddedStore(
  config: RegistryConfig,
  dir: string,
  verifier: VerifyPool,
  metrics: Metrics | undefined,
  log: Logger,
): Promise<EmbeddedStore> {
  const maxBytes = await resolveByteSize(config.cacheMaxBytes, dir).catch((cause: unknown) => {
    throw new ConfigError(`--data-dir: cannot size the disk of ${dir} for --cache-max-bytes`, { cause });
  });
  const store = new EmbeddedStore(
    {
      verifier,
      onEvict: (bytes) => {
        metrics?.cacheEvictions.inc({});
        metrics?.cacheEvictedBytes.inc({}, bytes);
      },
      onFull: (reason) => metrics?.cacheFull.inc({ reason }),
    },
    { dataDir: dir, maxBytes },
  );
  await store.start();
  if (maxBytes === 0) log.warn({ dataDir: dir }, 'the cache has no bound (--cache-max-bytes 0)');
  else log.info({ dataDir: dir, maxBytes }, 'cache bound');
  return store;
}

export async function openStore(
  config: RegistryConfig,
  log: Logger,
  verifier: VerifyPool,
  metrics?: Metrics,
): Promise<ContentStore> {
  if (config.store !== 'embedded') {
    const client = new ContainerdClient({
      socket: config.containerdSock,
      namespace: config.containerdNamespace,
      timeoutMs: config.storeTimeout,
    });
    const store = new ContainerdStore(
      { client },
      { contentPath: config.containerdContentPath, timeoutMs: config.storeTimeout },
    );
    try {
      await store.start();
      log.info(
        { socket: config.containerdSock, namespace: config.containerdNamespace },
        'serving from containerd',
      );
      return store;
    } catch (cause) {
      client.close();
      if (config.store === 'containerd') {
        throw new ConfigError(`--containerd-sock: containerd does not answer at ${config.containerdSock}`, {
          cause,
        });
      }
      log.warn(
        { socket: config.containerdSock },
        'containerd does not answer; --store auto falls back to the embedded store',
      );
    }
  }
  const store = await embeddedStore(config, config.dataDir, verifier, metrics, log);
  log.info({ dataDir: config.dataDir }, 'serving from the embedded store');
  return store;
}

export function bootstrapperFor(config: RegistryConfig): Bootstrapper {
  switch (config.bootstrapKind) {
    case 'dns':
      if (config.dnsBootstrapDomain === '')
        throw new ConfigError('--dns-bootstrap-domain: required with --bootstrap-kind dns');
      return dnsBootstrap(
        config.dnsBootstrapDomain,
        config.routerAddr.port,
        config.storeTimeout,
        config.dnsBootstrapResolver === '' ? undefined : config.dnsBootstrapResolver,
      );
    case 'http':
      if (config.httpBootstrapUrl === '')
        throw new ConfigError('--http-bootstrap-url: required with --bootstrap-kind http');
      return httpBootstrap(config.httpBootstrapUrl, config.storeTimeout);
    default:
      if (config.staticBootstrapPeers.length === 0 && config.httpBootstrapAddr === undefined) {
        throw new ConfigError(
          '--static-bootstrap-peers: at least one peer is needed with --bootstrap-kind static',
        );
      }
      return staticBootstrap(config.staticBootstrapPeers);
  }
}

/** The digest worker pool, started warm; every command that takes content in needs one. */
export async function startVerifier(
  config: { verifyWorkers: number; verifyTimeout?: number },
  log: Logger,
  metrics: Metrics,
): Promise<VerifyPool> {
  const pool = new VerifyPool(
    { log: log.child({ component: 'verify' }), metrics },
    {
      ...(config.verifyWorkers > 0 ? { threads: config.verifyWorkers } : {}),
      ...(config.verifyTimeout === undefined ? {} : { timeoutMs: config.verifyTimeout }),
    },
  );
  await pool.start();
  return pool;
}

/** Starts a server, naming the flag of its address when it cannot listen (in use by another shoal?). */
export async function listenOrFail<T extends { start(): Promise<void> }>(
  flag: string,
  address: { host: string | undefined; port: number },
  server: T,
): Promise<T> {
  try {
    await server.start();
  } catch (cause) {
    throw new ConfigError(`--${flag}: cannot listen on ${address.host ?? '*'}:${address.port}`, { cause });
  }
  return server;
}

/** Serves `routes` on a side server of their own at the address `--<flag>` names. */
export function serveSide(
  name: string,
  flag: string,
  address: { host: string | undefined; port: number },
  routes: readonly SideRoute[],
): Promise<SideServer> {
  return listenOrFail(flag, address, new SideServer({ name, routes }, address));
}

/** The embedded store pull-through keeps what it fetched in when the node serves from containerd. */
export async function openCacheBeside(
  config: RegistryConfig,
  verifier: VerifyPool,
  metrics: Metrics,
  log: Logger,
): Promise<EmbeddedStore> {
  return embeddedStore(config, join(config.dataDir, 'cache'), verifier, metrics, log);
}

/** Settings that contradict each other, found before anything starts. */
export function checkRegistryConfig(config: RegistryConfig): void {
  if (config.upstreamFallback && config.mirroredRegistries.length === 0) {
    throw new ConfigError(
      '--mirrored-registries: required with --upstream-fallback (pull-through reaches only the registries named there)',
    );
  }
}
