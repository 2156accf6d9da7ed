import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryConfig } from '../config/commands.js';
import { hostDirName } from '../containerd/hosts.js';
import { debugRoutes } from '../debug/routes.js';
import type { Logger } from '../log/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { PullHandler } from '../registry/handler.js';
import { RegistryServer } from '../registry/server.js';
import { loadTlsFiles } from '../registry/tls.js';
import { bootstrapIdRoute } from '../routing/bootstrap.js';
import { loadPsk } from '../routing/psk.js';
import { EmbeddedStore } from '../store/embedded.js';
import type { ContentStore } from '../store/store.js';
import { UnionStore } from '../store/union.js';
import { RegistryDiscovery } from '../tags/discovery.js';
import { BookedStore, KnownTagsStore } from '../tags/known-tags.js';
import { TagBook } from '../tags/tag-book.js';
import { TagInvalidator } from '../tags/tag-invalidator.js';
import { GuardedStore } from '../verify/guarded-store.js';
import { LocalChecker } from '../verify/local-checker.js';
import { Lifecycle } from './lifecycle.js';
import { buildMesh, type Mesh } from './mesh.js';
import { buildLedger, buildPreflight, debugSources } from './operator.js';
import {
  checkRegistryConfig,
  listenOrFail,
  openCacheBeside,
  openStore,
  serveSide,
  startVerifier,
} from './parts.js';
import { buildPullThrough } from './pull-through.js';

/** What a drain left behind: responses still running at the deadline, which were cut. */
export interface DrainResult {
  cut: number;
}

/**
 * The composition root of `shoal registry`: it owns every part of a node. `start` brings the parts up in
 * dependency order and, when one fails, stops those already running. `drain` takes the node out of
 * service gracefully; `stop` tears it down in reverse order.
 */
export class ShoalNode {
  readonly #log: Logger;
  readonly #life: Lifecycle;
  #draining = false;
  #registry: RegistryServer | undefined;

  private constructor(log: Logger) {
    this.#log = log;
    this.#life = new Lifecycle(log);
  }

  /** Starts a node; throws (with every part that started stopped again) when any part cannot start. */
  static async start(config: RegistryConfig, log: Logger): Promise<ShoalNode> {
    checkRegistryConfig(config);
    const node = new ShoalNode(log);
    try {
      await node.#start(config);
    } catch (err) {
      await node.#life.stopAll();
      throw err;
    }
    return node;
  }

  /** The bound ports, once started (`tls` is 0 without a TLS listener). */
  get ports(): { registry: number; tls: number } {
    return { registry: this.#registry?.port ?? 0, tls: this.#registry?.tlsPort ?? 0 };
  }

  /**
   * Takes the node out of service: `/readyz` answers 503, the registry port refuses new connections, and
   * responses in flight run until `deadline` (epoch ms). The router and advertiser stay up meanwhile, so
   * nothing still being served is withdrawn. What runs at the deadline is cut and counted.
   */
  async drain(deadline: number): Promise<DrainResult> {
    this.#draining = true;
    return { cut: (await this.#registry?.drain(deadline)) ?? 0 };
  }

  /** Stops every part, in reverse order of start. */
  stop(): Promise<void> {
    return this.#life.stopAll();
  }

  async #start(config: RegistryConfig): Promise<void> {
    const log = this.#log;
    const life = this.#life;
    const psk = config.p2pPskFile === '' ? undefined : await loadPsk(config.p2pPskFile);
    const tls = await loadTlsFiles(config.registryTlsCert, config.registryTlsKey);
    const metrics = new Metrics({ defaultMetrics: true });
    const verifier = life.started('verify', await startVerifier(config, log, metrics));
    log.info({ threads: verifier.threads }, 'digest workers warm');
    const opened = life.started('store', await openStore(config, log, verifier, metrics));
    // Pull-through keeps what it fetched in the embedded store: the node's own, or one beside containerd.
    const own = opened instanceof EmbeddedStore ? opened : undefined;
    const beside =
      config.upstreamFallback && own === undefined
        ? life.started('cache', await openCacheBeside(config, verifier, metrics, log))
        : undefined;
    const cache = config.upstreamFallback ? (own ?? beside) : undefined;
    const embedded = own ?? beside;
    if (embedded !== undefined) metrics.watchCache(() => embedded.heldBytes);
    // What this node holds, serves to peers and advertises: its store, plus a cache kept beside containerd,
    // behind one guard, so content found corrupt in either is neither served nor advertised again, and
    // the scrub and the re-check after a member's report see both.
    const local = new GuardedStore({
      store: beside === undefined ? opened : new UnionStore([opened, beside]),
    });
    const owned: ContentStore = local;
    // The last-known-good tag map: what keeps tags answering when the registry is down.
    await mkdir(config.dataDir, { recursive: true });
    const book = new TagBook(
      { log: log.child({ component: 'tags' }) },
      { path: join(config.dataDir, 'tags.json'), maxAgeMs: config.tagMaxAge },
    );
    await book.start();
    life.started('tags', book);
    const held = new BookedStore({ inner: owned, book });
    // Peers fetch from the registry port, as clients do: the one port that serves the whole pull API.
    const registryPort = (): number => this.#registry?.port ?? config.registryAddr.port;
    const mesh: Mesh | undefined =
      config.bootstrapKind === 'none'
        ? undefined
        : await buildMesh(config, { held, verifier, metrics, psk, registryPort, log });
    let store: ContentStore = mesh?.store ?? held;
    const pull =
      cache === undefined
        ? undefined
        : await buildPullThrough(config, { store, cache, held: local, verifier, mesh, metrics, log });
    store = new KnownTagsStore({ inner: pull?.store ?? store, book });
    const invalidator = new TagInvalidator({
      book,
      router: mesh?.router,
      log: log.child({ component: 'tags' }),
    });
    const adminServer = life.started(
      'admin',
      await serveSide('admin', 'admin-addr', config.adminAddr, [invalidator.route()]),
    );
    const checker = new LocalChecker(
      { store: local, verifier, metrics, log: log.child({ component: 'verify-local' }) },
      {
        scrub: config.verifyLocal,
        scrubIntervalMs: config.verifyLocalInterval,
        bytesPerSecond: config.verifyLocalRate,
      },
    );
    // Corrupt reports from members arrive over the router, never on the registry port.
    mesh?.router.onMessage('corrupt', async (_from, message) => {
      checker.report(message.digest);
      return true;
    });
    const ledger = buildLedger(config, {
      metrics,
      log,
      inFlight: () => this.#registry?.inFlight ?? 0,
    });
    const checks = buildPreflight(config, {
      serving: own === undefined ? 'containerd' : 'embedded',
      metrics,
      log,
    });
    life.started('preflight', checks);
    const ready = async (): Promise<boolean> =>
      !this.#draining &&
      checks.preflight.ready() &&
      (await store.ready()) &&
      (mesh === undefined || mesh.router.alone() || mesh.advertiser.announced());
    const handler = new PullHandler(
      {
        store,
        localStore: held,
        // Ready once the node can find what peers hold and peers can find what it holds, or has no peer to
        // know (a cluster of one); never in a drain, nor with a failed check under --strict-preflight.
        ready,
        ...(mesh === undefined ? {} : { authenticate: mesh.auth.verify.bind(mesh.auth) }),
        discovery: new RegistryDiscovery({
          store: held,
          book,
          ...(pull === undefined ? {} : { upstream: pull.upstream }),
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
    const registry = new RegistryServer(
      { handler, log: log.child({ component: 'registry' }), metrics, ledger },
      {
        host: config.registryAddr.host,
        port: config.registryAddr.port,
        chunkBytes: config.streamChunkBytes,
        buffers: config.streamBuffers,
        parkedBytes: config.streamParkedBytes,
        peerUploadRate: config.peerUploadRate,
        timeoutMs: config.storeTimeout,
        idleTimeoutMs: config.idleTimeout,
        tls: tls && { ...tls, host: config.registryTlsAddr.host, port: config.registryTlsAddr.port },
      },
    );
    const debug = config.debugWeb
      ? debugRoutes(
          debugSources(config, {
            startedAt: Date.now(),
            ports: () => this.ports,
            ready,
            store,
            held,
            mesh,
            ledger,
            preflight: checks.preflight,
          }),
        )
      : [];
    const metricsServer = life.started(
      'metrics',
      await serveSide('metrics', 'metrics-addr', config.metricsAddr, [metrics.route(), ...debug]),
    );
    const flag = tls === undefined ? 'registry-addr' : 'registry-addr or --registry-tls-addr';
    this.#registry = life.started('registry', await listenOrFail(flag, config.registryAddr, registry));
    log.info(
      {
        host: config.registryAddr.host ?? '*',
        port: registry.port,
        ...(tls === undefined ? {} : { tlsPort: registry.tlsPort }),
        store: store.kind,
        admin: adminServer.port,
        metrics: metricsServer.port,
        ...(config.debugWeb ? { debug: `http://<this node>:${metricsServer.port}/debug` } : {}),
      },
      'registry listening',
    );
    checks.preflight.start();
    if (mesh !== undefined) await this.#startMesh(config, mesh);
    if (ledger !== undefined) {
      ledger.start(() => mesh?.membership.size ?? 0);
      life.started('request summary', ledger);
    }
    checker.start();
    life.started('scrub', checker);
  }

  async #startMesh(config: RegistryConfig, mesh: Mesh): Promise<void> {
    const { router, advertiser } = mesh;
    await router.start();
    this.#life.started('router', router);
    this.#log.info({ peerId: router.peerId, addresses: router.addresses }, 'router listening');
    if (config.httpBootstrapAddr !== undefined) {
      const routes = [bootstrapIdRoute(() => router.addresses)];
      this.#life.started(
        'bootstrap id',
        await serveSide('bootstrap', 'http-bootstrap-addr', config.httpBootstrapAddr, routes),
      );
    }
    advertiser.start();
    this.#life.started('advertiser', advertiser);
  }
}
