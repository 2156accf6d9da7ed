#!/usr/bin/env node
import './polyfill.js';
import { realpathSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CleanupConfig,
  type ConfigurationConfig,
  cleanupFlags,
  configurationFlags,
  type ImportConfig,
  type InvalidateConfig,
  importFlags,
  invalidateFlags,
  type RegistryConfig,
  registryFlags,
} from './config/commands.js';
import { type FlagSet, parseFlags, renderHelp } from './config/flag.js';
import { ContainerdClient } from './containerd/client.js';
import { cleanupHostsConfig, hostDirName, writeHostsConfig } from './containerd/hosts.js';
import { ContainerdStore } from './containerd/store.js';
import { ConfigError, isShoalError } from './errors.js';
import { createLogger, type Logger } from './log/logger.js';
import { Metrics } from './metrics/metrics.js';
import { Advertiser } from './mirror/advertiser.js';
import { RegistryDiscovery } from './mirror/discovery.js';
import { BookedStore, KnownTagsStore } from './mirror/known-tags.js';
import { MirroringStore } from './mirror/mirroring-store.js';
import { OwnerElection } from './mirror/owner.js';
import { PeerAuth } from './mirror/peer-auth.js';
import { PullThroughStore } from './mirror/pull-through.js';
import { TagBook } from './mirror/tag-book.js';
import { TagInvalidator } from './mirror/tag-invalidator.js';
import { UpstreamClient } from './mirror/upstream.js';
import { CredentialStore } from './mirror/upstream-auth.js';
import { canonicalImageName } from './oci/reference.js';
import { FrontDoor } from './registry/front-door.js';
import { PullHandler } from './registry/handler.js';
import { RegistryServer } from './registry/server.js';
import { SideServer } from './registry/side-server.js';
import { loadTlsFiles } from './registry/tls.js';
import {
  type Bootstrapper,
  dnsBootstrap,
  httpBootstrap,
  serveBootstrapId,
  staticBootstrap,
} from './routing/bootstrap.js';
import type { Libp2pRouter } from './routing/libp2p/router.js';
import { loadPsk } from './routing/psk.js';
import { EmbeddedStore } from './store/embedded.js';
import { importOciLayout } from './store/oci-layout.js';
import type { ContentStore } from './store/store.js';
import { UnionStore } from './store/union.js';
import { httpOrigin } from './util/url.js';
import { GuardedStore } from './verify/guarded-store.js';
import { LocalChecker } from './verify/local-checker.js';
import { VerifyPool } from './verify/pool.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Where `shoal invalidate` POSTs on the node's admin address. */
const ADMIN_INVALIDATE_PATH = '/_shoal/v1/admin/invalidate';

interface Command {
  summary: string;
  usage: string;
  flags: FlagSet;
  /** Takes arguments besides flags (a layout directory, an image name). */
  positional?: boolean;
  run(values: never, positional: string[], out: NodeJS.WritableStream): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  registry: {
    summary: 'Run the mirror: serve the OCI pull API from the node’s content store.',
    usage: 'Usage: shoal registry [flags]',
    flags: registryFlags,
    run: (config: RegistryConfig) => runRegistry(config),
  },
  configuration: {
    summary: 'Write containerd’s hosts.toml mirror configuration.',
    usage: 'Usage: shoal configuration --mirror-targets URL… [--mirrored-registries URL…] [flags]',
    flags: configurationFlags,
    run: (config: ConfigurationConfig, _positional, out) => runConfiguration(config, out),
  },
  cleanup: {
    summary: 'Remove shoal’s containerd configuration and restore what was there before.',
    usage: 'Usage: shoal cleanup [flags]',
    flags: cleanupFlags,
    run: (config: CleanupConfig) => cleanupHostsConfig(config.containerdRegistryConfigPath).then(() => 0),
  },
  import: {
    summary: 'Copy an OCI image layout into the embedded store and tag its manifests.',
    usage: 'Usage: shoal import --repository REPO [--registry HOST] [--data-dir DIR] LAYOUT_DIR',
    flags: importFlags,
    positional: true,
    run: (config: ImportConfig, positional, out) => runImport(config, positional, out),
  },
  invalidate: {
    summary: 'Make the whole cluster drop a tag mapping (registry/repo:tag), through the local node.',
    usage: 'Usage: shoal invalidate [--admin-addr HOST:PORT] REGISTRY/REPOSITORY:TAG',
    flags: invalidateFlags,
    positional: true,
    run: (config: InvalidateConfig, positional, out) => runInvalidate(config, positional, out),
  },
};

function topHelp(): string {
  const lines = [
    'shoal: a peer-to-peer OCI registry mirror for Kubernetes.',
    '',
    'Usage: shoal <command> [flags]',
    '',
    'Commands:',
  ];
  for (const [name, command] of Object.entries(COMMANDS))
    lines.push(`  ${name.padEnd(14)} ${command.summary}`);
  lines.push(
    '',
    'Run `shoal <command> --help` for its flags. Every flag can also be set by its environment variable.',
  );
  return lines.join('\n');
}

/** Runs the CLI; returns the exit code. Separated from process wiring so tests can call it. */
export async function main(
  argv: readonly string[],
  env: Env,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.write(`${topHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined)
    throw new ConfigError(`unknown command ${JSON.stringify(name)} (see shoal --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    out.write(`${renderHelp(command.usage, command.flags)}\n`);
    return 0;
  }
  const { values, positional } = parseFlags(command.flags, rest, env);
  if (command.positional !== true && positional.length > 0) {
    throw new ConfigError(`unexpected argument ${JSON.stringify(positional[0])} (flags start with --)`);
  }
  return command.run(values as never, positional, out);
}

async function openStore(config: RegistryConfig, log: Logger, verifier: VerifyPool): Promise<ContentStore> {
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
  const store = new EmbeddedStore({ verifier }, { dataDir: config.dataDir, maxBytes: config.cacheMaxBytes });
  await store.start();
  log.info({ dataDir: config.dataDir }, 'serving from the embedded store');
  return store;
}

function bootstrapperFor(config: RegistryConfig): Bootstrapper {
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
async function startVerifier(
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
async function listenOrFail<T extends { start(): Promise<void> }>(
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

function startMetrics(config: RegistryConfig, metrics: Metrics): Promise<SideServer> {
  const route = {
    method: 'get' as const,
    path: '/metrics',
    handle: async () => ({ status: 200, contentType: metrics.contentType, body: await metrics.render() }),
  };
  const address = { host: config.metricsAddr.host, port: config.metricsAddr.port };
  return listenOrFail('metrics-addr', address, new SideServer({ name: 'metrics', routes: [route] }, address));
}

/** The operator's endpoint: `shoal invalidate` POSTs here. */
function startAdmin(config: RegistryConfig, invalidator: TagInvalidator): Promise<SideServer> {
  const route = {
    method: 'post' as const,
    path: ADMIN_INVALIDATE_PATH,
    handle: async (query: string) => {
      let name: string;
      try {
        name = canonicalImageName(new URLSearchParams(query).get('name') ?? '');
      } catch (err) {
        return { status: 400, contentType: 'text/plain', body: `${(err as Error).message}\n` };
      }
      const result = await invalidator.invalidate(name);
      return { status: 200, contentType: 'application/json', body: JSON.stringify(result) };
    },
  };
  const address = { host: config.adminAddr.host, port: config.adminAddr.port };
  return listenOrFail('admin-addr', address, new SideServer({ name: 'admin', routes: [route] }, address));
}

/** Where pull-through keeps what it fetched: the embedded store itself, or one beside containerd's. */
async function openCache(
  config: RegistryConfig,
  local: ContentStore,
  verifier: VerifyPool,
): Promise<EmbeddedStore> {
  if (local instanceof EmbeddedStore) return local;
  const cache = new EmbeddedStore(
    { verifier },
    { dataDir: join(config.dataDir, 'cache'), maxBytes: config.cacheMaxBytes },
  );
  await cache.start();
  return cache;
}

/** Settings that contradict each other, found before anything starts. */
function checkRegistryConfig(config: RegistryConfig): void {
  if (config.upstreamFallback && config.mirroredRegistries.length === 0) {
    throw new ConfigError(
      '--mirrored-registries: required with --upstream-fallback (pull-through reaches only the registries named there)',
    );
  }
}

async function runRegistry(config: RegistryConfig): Promise<number> {
  checkRegistryConfig(config);
  const log = createLogger(config.logLevel);
  const psk = config.p2pPskFile === '' ? undefined : await loadPsk(config.p2pPskFile);
  const tls = await loadTlsFiles(config.registryTlsCert, config.registryTlsKey);
  const metrics = new Metrics({ defaultMetrics: true });
  const metricsServer = await startMetrics(config, metrics);
  const verifier = await startVerifier(config, log, metrics);
  log.info({ threads: verifier.threads, port: metricsServer.port }, 'digest workers warm; metrics listening');
  // Content found corrupt here is neither served nor advertised again.
  const local = new GuardedStore({ store: await openStore(config, log, verifier) });
  const checker = new LocalChecker(
    { store: local, verifier, metrics, log: log.child({ component: 'verify-local' }) },
    {
      scrub: config.verifyLocal,
      scrubIntervalMs: config.verifyLocalInterval,
      bytesPerSecond: config.verifyLocalRate,
    },
  );
  // Pull-through keeps what it fetched in the embedded store: the node's own, or one beside containerd.
  const cache = config.upstreamFallback ? await openCache(config, local.inner, verifier) : undefined;
  // What this node serves to peers and advertises: its store, plus a cache kept beside containerd.
  const owned: ContentStore =
    cache === undefined || cache === local.inner ? local : new UnionStore([local, cache]);
  // The last-known-good tag map: what keeps tags answering when the registry is down.
  await mkdir(config.dataDir, { recursive: true });
  const book = new TagBook(
    { log: log.child({ component: 'tags' }) },
    { path: join(config.dataDir, 'tags.json'), maxAgeMs: config.tagMaxAge },
  );
  await book.start();
  const held = new BookedStore({ inner: owned, book });
  let router: Libp2pRouter | undefined;
  let auth: PeerAuth | undefined;
  let store: ContentStore = held;
  let advertiser: Advertiser | undefined;
  let server: RegistryServer | undefined;
  if (config.bootstrapKind !== 'none') {
    // libp2p is loaded only when P2P is on, so `shoal configuration` in an init container starts fast.
    const { Libp2pRouter } = await import('./routing/libp2p/router.js');
    router = new Libp2pRouter(
      { log: log.child({ component: 'router' }) },
      {
        host: config.routerAddr.host ?? '0.0.0.0',
        port: config.routerAddr.port,
        dataDir: config.dataDir,
        // Peers fetch from the blob listener directly: no redirect between two shoals.
        registryPort: () => server?.port ?? config.registryBlobAddr.port,
        bootstrap: bootstrapperFor(config),
        refreshIntervalMs: config.routerRefreshInterval,
        joinTimeoutMs: config.routerJoinTimeout,
        psk,
      },
    );
    if (psk === undefined) {
      log.warn(
        { flag: '--p2p-psk-file' },
        'no private network key: any process that reaches the router port can join this cluster',
      );
    }
    auth = new PeerAuth({ router });
    store = new MirroringStore(
      {
        local: held,
        router,
        auth,
        verifier: config.verifyRemote ? verifier : undefined,
        metrics,
        log: log.child({ component: 'mirror' }),
      },
      {
        resolveTimeoutMs: config.mirrorResolveTimeout,
        resolveTimeoutMaxMs: config.mirrorResolveTimeoutMax,
        lookupRefreshMs: config.mirrorLookupRefresh,
        maxAttempts: config.mirrorResolveRetries,
        corruptQuarantineMs: config.peerCorruptQuarantine,
        chunkBytes: config.streamChunkBytes,
      },
    );
    advertiser = new Advertiser(
      { store: held, router, log: log.child({ component: 'advertiser' }) },
      { readyWaitMs: config.routerJoinTimeout },
    );
    const members = router;
    metrics.watchMembers(() => members.members().length);
  }
  let upstream: UpstreamClient | undefined;
  if (cache !== undefined) {
    const credentials =
      config.registryCredentials === '' ? undefined : await CredentialStore.load(config.registryCredentials);
    upstream = new UpstreamClient(
      { credentials },
      {
        mirroredRegistries: config.mirroredRegistries.map(hostDirName),
        privateHosts: config.upstreamPrivateHosts,
        insecureRegistries: config.insecureRegistries,
        timeoutMs: config.upstreamTimeout,
      },
    );
    // With P2P on, one node per digest fetches from upstream (rendezvous hashing over the members).
    const election = router === undefined ? undefined : await OwnerElection.create();
    store = new PullThroughStore(
      {
        inner: store,
        cache,
        upstream,
        verifier,
        router,
        election,
        auth,
        log: log.child({ component: 'pull-through' }),
      },
      { tagTimeoutMs: Math.min(2000, config.manifestTimeout) },
    );
  }
  store = new KnownTagsStore({ inner: store, book });
  const invalidator = new TagInvalidator({ book, router, log: log.child({ component: 'tags' }) });
  const adminServer = await startAdmin(config, invalidator);
  // Notices from members arrive over the router, never on the registry port.
  // Corrupt reports from members arrive over the router, never on the registry port.
  router?.onMessage('corrupt', async (_from, message) => {
    checker.report(message.digest);
    return true;
  });
  const handler = new PullHandler(
    {
      store,
      localStore: held,
      // Ready once the node can find what peers hold and peers can find what it holds.
      ready: async () => (await store.ready()) && (advertiser?.announced() ?? true),
      ...(auth === undefined ? {} : { authenticate: auth.verify.bind(auth) }),
      discovery: new RegistryDiscovery({
        store: held,
        book,
        ...(upstream === undefined ? {} : { upstream }),
        log: log.child({ component: 'discovery' }),
      }),
    },
    {
      defaultRegistry: config.defaultRegistry,
      mirroredRegistries: config.mirroredRegistries.map(hostDirName),
      registryFilters: config.registryFilters,
      resolveTags: config.resolveTags,
      manifestTimeoutMs: config.manifestTimeout,
    },
  );
  server = new RegistryServer(
    { handler, log: log.child({ component: 'registry' }) },
    {
      host: config.registryBlobAddr.host,
      port: config.registryBlobAddr.port,
      chunkBytes: config.streamChunkBytes,
      buffers: config.streamBuffers,
      peerUploadRate: config.peerUploadRate,
      timeoutMs: config.storeTimeout,
      tls: tls && { ...tls, host: config.registryTlsAddr.host, port: config.registryTlsAddr.port },
    },
  );
  await listenOrFail(
    tls === undefined ? 'registry-blob-addr' : 'registry-blob-addr or --registry-tls-addr',
    config.registryBlobAddr,
    server,
  );
  const blobs = server;
  const frontDoor = await listenOrFail(
    'registry-addr',
    config.registryAddr,
    new FrontDoor(
      { handler, log: log.child({ component: 'registry' }), blobPort: () => blobs.port },
      {
        host: config.registryAddr.host,
        port: config.registryAddr.port,
        headTimeoutMs: config.registryHeadTimeout,
      },
    ),
  );
  log.info(
    {
      host: config.registryAddr.host ?? '*',
      port: frontDoor.port,
      blobPort: server.port,
      ...(tls === undefined ? {} : { tlsPort: server.tlsPort }),
      store: store.kind,
      admin: adminServer.port,
    },
    'registry listening',
  );
  let idServer: Server | undefined;
  if (router !== undefined) {
    await router.start();
    const started = router;
    log.info({ peerId: started.peerId, addresses: started.addresses }, 'router listening');
    if (config.httpBootstrapAddr !== undefined) {
      idServer = await serveBootstrapId(
        config.httpBootstrapAddr.host,
        config.httpBootstrapAddr.port,
        () => started.addresses,
      );
    }
    advertiser?.start();
  }
  checker.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info({}, 'stopping');
  await frontDoor.stop();
  await server.stop();
  idServer?.close();
  await advertiser?.stop();
  await router?.stop();
  await checker.stop();
  await local.stop();
  if (cache !== undefined && cache !== local.inner) await cache.stop();
  await book.stop();
  await verifier.stop();
  await adminServer.stop();
  await metricsServer.stop();
  return 0;
}

async function runConfiguration(config: ConfigurationConfig, out: NodeJS.WritableStream): Promise<number> {
  const written = await writeHostsConfig({
    configPath: config.containerdRegistryConfigPath,
    mirroredRegistries: config.mirroredRegistries,
    mirrorTargets: config.mirrorTargets,
    resolveTags: config.resolveTags,
    prependExisting: config.prependExisting,
    dialTimeoutMs: config.dialTimeout,
  });
  for (const file of written) out.write(`wrote ${file}\n`);
  return 0;
}

async function runInvalidate(
  config: InvalidateConfig,
  positional: string[],
  out: NodeJS.WritableStream,
): Promise<number> {
  const [ref, extra] = positional;
  if (ref === undefined || extra !== undefined)
    throw new ConfigError('invalidate: name exactly one REGISTRY/REPOSITORY:TAG');
  let name: string;
  try {
    name = canonicalImageName(ref);
  } catch (err) {
    throw new ConfigError(`invalidate: ${(err as Error).message}`);
  }
  const url = `${httpOrigin(config.adminAddr.host ?? '127.0.0.1', config.adminAddr.port)}${ADMIN_INVALIDATE_PATH}`;
  let response: Response;
  try {
    response = await fetch(`${url}?${new URLSearchParams({ name })}`, {
      method: 'POST',
      signal: AbortSignal.timeout(config.timeout),
    });
  } catch (cause) {
    throw new ConfigError(`--admin-addr: no shoal answered at ${url} (${(cause as Error).message})`, {
      cause,
    });
  }
  const text = await response.text();
  if (response.status !== 200)
    throw new ConfigError(`invalidate: the node answered ${response.status}: ${text.trim()}`);
  const result = JSON.parse(text) as { members: number; told: number };
  out.write(`invalidated ${name}; told ${result.told} of ${result.members} peers\n`);
  return result.told < result.members ? 3 : 0;
}

async function runImport(
  config: ImportConfig,
  positional: string[],
  out: NodeJS.WritableStream,
): Promise<number> {
  const [layout, extra] = positional;
  if (layout === undefined || extra !== undefined)
    throw new ConfigError('import: name exactly one OCI layout directory');
  if (config.repository === '') throw new ConfigError('--repository: required');
  const verifier = await startVerifier(config, createLogger(config.logLevel), new Metrics());
  try {
    const store = new EmbeddedStore({ verifier }, { dataDir: config.dataDir });
    await store.start();
    const result = await importOciLayout(store, layout, {
      registry: config.registry,
      repository: config.repository,
    });
    await store.stop();
    out.write(`imported ${result.blobs} blobs; tags: ${result.tags.join(', ') || '(none)'}\n`);
  } finally {
    await verifier.stop();
  }
  return 0;
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  return entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
}

if (isEntryPoint()) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof ConfigError) {
        process.stderr.write(`shoal: ${err.message}\n`);
        process.exit(2);
      }
      process.stderr.write(
        `shoal: ${isShoalError(err) ? err.message : String((err as Error)?.stack ?? err)}\n`,
      );
      process.exit(1);
    },
  );
}
