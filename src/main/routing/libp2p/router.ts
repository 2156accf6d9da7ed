// libp2p calls Promise.withResolvers (Node 22+); whoever uses this router gets the polyfill first.
import '../../polyfill.js';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { type KadDHT, kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import type { Logger } from '../../log/logger.js';
import { setBounded } from '../../util/bounded-map.js';
import type { Bootstrapper } from '../bootstrap.js';
import { MessageDispatch, type MessageHandler, type MessageKind, type PeerMessage } from '../messages.js';
import type { Provider, Router } from '../router.js';
import { loadIdentity } from './identity.js';
import { routingCid } from './keys.js';
import { Liveness } from './liveness.js';
import { MemberProof, peerIdOf } from './member-proof.js';
import { NoticeChannel } from './notices.js';
import { isRegistryAddress, registryAddresses, registryOrigin, remoteHost } from './registry-address.js';

export const DHT_PROTOCOL = '/shoal/kad/1.0.0';
/** Served for nodes of the previous version, which ask every provider for its registry port. */
export const REGISTRY_PROTOCOL = '/shoal/registry/1.0.0';

export interface Libp2pRouterInit {
  /** Interface and TCP port the router listens on (port 0 picks one). */
  host: string;
  port: number;
  /** Holds the node identity. */
  dataDir: string;
  /** Port of this node's registry API, announced to peers (a function when known only after listen). */
  registryPort: number | (() => number);
  /** Multiaddrs to join through (peer id optional), asked for at start and when the node is cut off. */
  bootstrap?: Bootstrapper;
  /** Longest wait to dial a peer (bootstrap, liveness probe); default 1000 ms. */
  peerTimeoutMs?: number;
  /** How often a cut-off node bootstraps again (doubling up to 8×); default 1000 ms. */
  rebootstrapMs?: number;
  /**
   * How often the node looks itself up in the DHT, meeting the nodes nearest to it; default 30 s
   * (`--router-refresh-interval`). kad-dht's own default is 5 min, which left nodes that joined at about
   * the same time unaware of each other for minutes, so their owner elections disagreed.
   */
  refreshIntervalMs?: number;
  /** Longest a joining node waits for its first self-lookup before it reports ready anyway; default 10 s. */
  joinTimeoutMs?: number;
  /**
   * The private network's pre-shared key (`/key/swarm/psk/1.0.0/` format, `--p2p-psk-file`): a node
   * without the same key cannot complete a connection. Undefined: an open network.
   */
  psk?: Uint8Array | undefined;
}

type Node = Libp2p<{ dht: KadDHT; identify: unknown; ping: unknown }>;

/** kad-dht's routing table: public on the implementation but missing from the KadDHT interface type. */
function table(
  node: Node,
): { size: number; kb?: { toIterable(): Iterable<{ peerId: PeerId }> } } | undefined {
  return (node.services.dht as unknown as { routingTable?: ReturnType<typeof table> }).routingTable;
}

/** Peers whose identify answer is remembered (the least recently identified is forgotten first). */
const MAX_ANNOUNCED = 10_000;

/** Longest wait to reach an elected owner that is not connected; the caller's own deadline is usually shorter. */
const MEMBER_TIMEOUT_MS = 30_000;

/** Kademlia routing over libp2p on shoal's own protocol prefix. The only module that imports libp2p. */
export class Libp2pRouter implements Router {
  readonly #init: Libp2pRouterInit;
  readonly #log: Logger;
  #node: Node | undefined;
  #proof: MemberProof | undefined;
  #notices: NoticeChannel | undefined;
  readonly #messages = new MessageDispatch();
  #liveness: Liveness | undefined;
  #rebootstrap: NodeJS.Timeout | undefined;
  #backoff = 1;
  /** Set once the first self-lookup has met the nodes nearest to this one (or the join wait ran out). */
  #joined = false;
  #joinTimer: NodeJS.Timeout | undefined;
  /**
   * Where each peer's registry serves, from its latest identify answer and the connection that carried it
   * (worked out once there, not on every request). The peer store also merges addresses from other nodes'
   * provider records, which can still name a port from before a restart.
   */
  readonly #announced = new Map<string, string>();
  /**
   * Peers connected but not identified since: what they announced before may name a port from before a
   * restart, so they are skipped until identify answers (milliseconds).
   */
  readonly #identifying = new Set<string>();

  constructor(deps: { log: Logger }, init: Libp2pRouterInit) {
    this.#log = deps.log;
    this.#init = init;
  }

  get peerId(): string {
    return this.#require().peerId.toString();
  }

  /** Addresses peers can dial, with this node's peer id (the announced registry addresses left out). */
  get addresses(): string[] {
    return this.#require()
      .getMultiaddrs()
      .filter((address) => !isRegistryAddress(address))
      .map((address) => address.toString());
  }

  async start(): Promise<void> {
    const privateKey = await loadIdentity(this.#init.dataDir);
    const registryPort = (): number =>
      typeof this.#init.registryPort === 'function' ? this.#init.registryPort() : this.#init.registryPort;
    const node = (await createLibp2p({
      privateKey,
      addresses: {
        listen: [`/ip4/${this.#init.host}/tcp/${this.#init.port}`],
        // The registry's address travels with this node's addresses: in identify and in provider records.
        announceFilter: (addresses) => [...addresses, ...registryAddresses(addresses, registryPort())],
      },
      transports: [tcp()],
      ...(this.#init.psk === undefined ? {} : { connectionProtector: preSharedKey({ psk: this.#init.psk }) }),
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        ping: ping(),
        // Keep private and loopback addresses: the default mapper drops them and the table stays empty.
        dht: kadDHT({
          protocol: DHT_PROTOCOL,
          clientMode: false,
          peerInfoMapper: passthroughMapper,
          // kad-dht re-provides every record a day before its 48 h expiry. A provide costs ~12 ms of CPU
          // (npm run bench -- p2p), so two at a time keeps a node with thousands of keys from spiking.
          reprovide: { concurrency: 2 },
          querySelfInterval: this.#init.refreshIntervalMs ?? 30_000,
          // Every query waits for the first self-lookup, which kad-dht starts 1 s after start by default:
          // a node that had just joined answered its first requests with misses. Start it at once.
          initialQuerySelfInterval: 0,
        }),
      },
    })) as unknown as Node;
    const liveness = new Liveness(
      {
        log: this.#log,
        connected: (id) => node.getConnections(peerIdFromString(id)).length > 0,
        dial: async (id, signal) => {
          await node.dial(peerIdFromString(id), { signal });
        },
      },
      { probeTimeoutMs: this.#init.peerTimeoutMs ?? 1000 },
    );
    node.addEventListener('peer:connect', (event) => {
      const id = event.detail.toString();
      if (!this.#announced.has(id)) this.#identifying.add(id);
      liveness.connected(id);
      this.#armJoinTimer();
    });
    node.addEventListener('peer:disconnect', (event) => {
      const id = event.detail.toString();
      // An identify answer belongs to the connection that carried it.
      this.#announced.delete(id);
      this.#identifying.delete(id);
      liveness.disconnected(id);
    });
    node.addEventListener('peer:identify', ({ detail }) => {
      const id = detail.peerId.toString();
      this.#identifying.delete(id);
      this.#remember(id, registryOrigin(detail.listenAddrs, remoteHost(detail.connection.remoteAddr)));
    });
    // kad-dht announces each finished self-lookup on the node's event bus.
    (node as unknown as EventTarget).addEventListener('kad-dht:query:self', () => this.#join());
    await node.handle(REGISTRY_PROTOCOL, (stream) => this.#tellRegistry(stream, registryPort()));
    const notices = new NoticeChannel(node, this.#log, (from, message) =>
      this.#messages.dispatch(from, message),
    );
    await notices.start();
    // kad-dht answers GET_PROVIDERS with each provider's addresses from the peer store, and drops providers
    // without any; libp2p keeps none for the node itself, so a holder asked directly left itself out, and a
    // node that had just joined found nothing when the holder was the one it asked.
    const recordSelf = (): void => {
      void node.peerStore.patch(node.peerId, { multiaddrs: node.getMultiaddrs() }).catch((err: unknown) => {
        this.#log.warn({ err }, 'could not record this node’s own addresses');
      });
    };
    node.addEventListener('self:peer:update', recordSelf);
    recordSelf();
    this.#node = node;
    this.#proof = new MemberProof(node, privateKey, (id) => liveness.isGone(id));
    this.#notices = notices;
    this.#liveness = liveness;
    liveness.start();
    await this.#bootstrap();
    this.#scheduleRebootstrap();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#rebootstrap);
    clearTimeout(this.#joinTimer);
    this.#liveness?.stop();
    await this.#node?.stop();
    this.#node = undefined;
    this.#notices = undefined;
  }

  /**
   * Joined (the first self-lookup has met the nearest nodes, which learnt of this one as it asked them),
   * with a non-empty routing table and at least one live connection. Before the self-lookup every kad-dht
   * query waits for it, so a node ready earlier would miss content the cluster holds. kad-dht keeps dead
   * peers in its table for a long time, so the table alone would keep a cut-off node "ready".
   */
  ready(): boolean {
    const node = this.#node;
    return node !== undefined && this.#joined && this.#connected(node);
  }

  /**
   * Providers as kad-dht finds them: first from the records this node keeps itself (every node among the
   * k nearest to a key keeps all of them, which in a cluster of up to 20 nodes is every node), then from
   * the network. Each answer lists every provider its sender knows, so the lookup ends at the first answer
   * that names a live one instead of walking the whole DHT.
   */
  async *lookup(key: string, signal: AbortSignal): AsyncIterable<Provider> {
    const node = this.#require();
    const self = node.peerId.toString();
    const seen = new Set<string>();
    for await (const event of node.services.dht.findProviders(await routingCid(key), { signal })) {
      if (event.name !== 'PROVIDER') continue;
      let live = false;
      for (const found of event.providers) {
        const id = found.id.toString();
        if (id === self || seen.has(id)) continue;
        seen.add(id);
        const provider = this.#provider(id, found.multiaddrs, found.id);
        if (provider === undefined) continue;
        live = true;
        yield provider;
      }
      if (live) return;
    }
  }

  async advertise(keys: readonly string[]): Promise<void> {
    const node = this.#require();
    for (const key of keys) await node.contentRouting.provide(await routingCid(key));
  }

  async withdraw(keys: readonly string[]): Promise<void> {
    const node = this.#require();
    for (const key of keys) await node.contentRouting.cancelReprovide(await routingCid(key));
  }

  get selfId(): string {
    return this.peerId;
  }

  members(): string[] {
    const node = this.#node;
    if (node === undefined) return [];
    // kad-dht admits a node that connects only after pinging it, and a failed ping is not retried until a
    // query meets it again: the nodes that identified themselves are members from their first connection.
    const ids = new Set(this.#announced.keys());
    for (const contact of table(node)?.kb?.toIterable() ?? []) ids.add(contact.peerId.toString());
    ids.delete(node.peerId.toString());
    return [...ids].filter((id) => this.#usable(id));
  }

  current(provider: Provider): Provider | undefined {
    if (this.#node === undefined || !this.#usable(provider.id)) return undefined;
    const registry = this.#announced.get(provider.id);
    return registry === undefined || registry === provider.registry
      ? provider
      : { id: provider.id, registry };
  }

  /**
   * A member's registry address, from what it announced. A member this node holds no connection to is
   * dialled first (proof of life, bounded by the caller's signal); a member known gone is refused.
   */
  async provider(id: string, signal: AbortSignal): Promise<Provider | undefined> {
    const node = this.#require();
    const peer = peerIdOf(id);
    if (peer === undefined || id === node.peerId.toString() || this.#liveness?.isGone(id) === true)
      return undefined;
    if (node.getConnections(peer).length === 0) {
      try {
        await node.dial(peer, { signal: AbortSignal.any([signal, AbortSignal.timeout(MEMBER_TIMEOUT_MS)]) });
      } catch (err) {
        this.#log.debug({ peer: id, err }, 'member unreachable');
        return undefined;
      }
    }
    // Just dialled, its identify answer may still be on the way: what the peer store holds stands in.
    const stored = await node.peerStore.get(peer).catch(() => undefined);
    return this.#provider(id, stored?.addresses.map((address) => address.multiaddr) ?? [], peer);
  }

  async tell(id: string, message: PeerMessage, signal: AbortSignal): Promise<boolean> {
    const peer = peerIdOf(id);
    if (peer === undefined || this.#notices === undefined || id === this.selfId) return false;
    return this.#notices.tell(peer, message, signal);
  }

  onMessage<K extends MessageKind>(kind: K, handler: MessageHandler<K>): void {
    this.#messages.on(kind, handler);
  }

  async sign(payload: Uint8Array): Promise<Uint8Array> {
    if (this.#proof === undefined) throw new Error('router is not started');
    return this.#proof.sign(payload);
  }

  /** See MemberProof: the key the peer id names, and a connection as the proof of membership. */
  async verifyMember(
    id: string,
    payload: Uint8Array,
    signature: Uint8Array,
    signal: AbortSignal,
  ): Promise<boolean> {
    return (await this.#proof?.verify(id, payload, signature, signal)) ?? false;
  }

  #require(): Node {
    if (this.#node === undefined) throw new Error('router is not started');
    return this.#node;
  }

  #connected(node: Node): boolean {
    return (table(node)?.size ?? 0) > 0 && node.getConnections().length > 0;
  }

  /** A self-lookup that fails sends no event: from the first connection, the join wait bounds unreadiness. */
  #armJoinTimer(): void {
    if (this.#joined || this.#joinTimer !== undefined) return;
    this.#joinTimer = setTimeout(() => this.#join(), this.#init.joinTimeoutMs ?? 10_000);
    this.#joinTimer.unref();
  }

  #join(): void {
    if (!this.#joined) this.#log.info({ members: this.members().length }, 'joined the cluster');
    this.#joined = true;
    clearTimeout(this.#joinTimer);
  }

  /**
   * Peer `id` as a provider, or undefined when it is gone or announced no registry address (a node of the
   * previous version: it is skipped until it is upgraded). Its own latest identify answer says where it
   * serves; a peer never identified to this node is taken at the `recorded` addresses, and the request to
   * its registry proves it alive.
   */
  #provider(id: string, recorded: Multiaddr[], peer: PeerId): Provider | undefined {
    if (!this.#usable(id)) return undefined;
    const registry =
      this.#announced.get(id) ??
      registryOrigin(recorded, remoteHost(this.#require().getConnections(peer)[0]?.remoteAddr));
    return registry === undefined ? undefined : { id, registry };
  }

  /** Neither gone nor reconnected with its identify answer still on the way. */
  #usable(id: string): boolean {
    return this.#liveness?.isGone(id) !== true && !this.#identifying.has(id);
  }

  #remember(id: string, registry: string | undefined): void {
    if (registry === undefined) return;
    setBounded(this.#announced, id, registry, MAX_ANNOUNCED);
  }

  #tellRegistry(stream: Stream, port: number): void {
    // One JSON line; the asker stops at the newline (stream end is not signalled promptly by every muxer).
    stream.send(new TextEncoder().encode(`${JSON.stringify({ port })}\n`));
    void stream.close().catch(() => undefined);
  }

  async #bootstrap(): Promise<void> {
    const node = this.#require();
    const self = node.peerId.toString();
    const own = new Set(node.getMultiaddrs().map((address) => address.decapsulateCode(421).toString()));
    let entries: string[] = [];
    try {
      entries = (await this.#init.bootstrap?.()) ?? [];
    } catch (err) {
      this.#log.warn({ err }, 'bootstrap source failed');
    }
    // Entries naming this node are skipped, so one list can serve every node.
    for (const entry of entries) {
      const address = multiaddr(entry);
      const peer = address.getComponents().find((component) => component.name === 'p2p')?.value;
      if (peer === self || own.has(address.decapsulateCode(421).toString())) continue;
      try {
        await node.dial(address, { signal: AbortSignal.timeout(this.#init.peerTimeoutMs ?? 1000) });
      } catch (err) {
        this.#log.debug({ address: entry, err }, 'bootstrap peer unreachable');
      }
    }
  }

  /** A node with no live connection (or an empty table) is cut off: join again, backing off while that fails. */
  #scheduleRebootstrap(): void {
    const base = this.#init.rebootstrapMs ?? 1000;
    this.#rebootstrap = setTimeout(async () => {
      const node = this.#node;
      if (node === undefined) return;
      if (this.#connected(node)) this.#backoff = 1;
      else {
        await this.#bootstrap();
        this.#backoff = Math.min(this.#backoff * 2, 8);
      }
      this.#scheduleRebootstrap();
    }, base * this.#backoff);
    this.#rebootstrap.unref();
  }
}
