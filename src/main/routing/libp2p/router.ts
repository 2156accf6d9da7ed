// libp2p calls Promise.withResolvers (Node 22+); whoever uses this router gets the polyfill first.
import '../../polyfill.js';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../../log/logger.js';
import { inTurn } from '../../util/in-turn.js';
import { MessageDispatch, type MessageHandler, type MessageKind, type PeerMessage } from '../messages.js';
import type { Provider, Router } from '../router.js';
import { AddressBook } from './address-book.js';
import { loadIdentity } from './identity.js';
import { Joining } from './joining.js';
import { routingCid } from './keys.js';
import { Liveness } from './liveness.js';
import { MemberProof, peerIdOf } from './member-proof.js';
import {
  createNode,
  type Libp2pRouterInit,
  type Node,
  recordOwnAddresses,
  serveRegistryPort,
  table,
} from './node.js';
import { NoticeChannel } from './notices.js';
import { isRegistryAddress, registryOrigin, remoteHost } from './registry-address.js';

/** Longest wait to reach an elected owner that is not connected; the caller's own deadline is usually shorter. */
const MEMBER_TIMEOUT_MS = 30_000;

/**
 * Kademlia routing over libp2p on shoal’s own protocol prefix (the libp2p node itself is built in node.ts).
 * The registry port listens before the router has joined, and still drains after it stopped: in between,
 * the router answers as a node that knows nobody (no providers, no members, its own id), never with an error.
 */
export class Libp2pRouter implements Router {
  readonly #init: Libp2pRouterInit;
  readonly #log: Logger;
  #identity: { key: PrivateKey; id: string } | undefined;
  #node: Node | undefined;
  #proof: MemberProof | undefined;
  #notices: NoticeChannel | undefined;
  readonly #messages = new MessageDispatch();
  #liveness: Liveness | undefined;
  #joining: Joining | undefined;
  /** Set once the first self-lookup has met the nodes nearest to this one (or the join wait ran out). */
  #joined = false;
  #joinTimer: NodeJS.Timeout | undefined;
  readonly #book = new AddressBook((id) => this.#liveness?.isGone(id) === true);

  constructor(deps: { log: Logger }, init: Libp2pRouterInit) {
    this.#log = deps.log;
    this.#init = init;
  }

  get peerId(): string {
    if (this.#identity === undefined) throw new Error('router identity not loaded');
    return this.#identity.id;
  }

  /** Loads (or creates) the node's identity, so its id is known before the router starts; start does it too. */
  async load(): Promise<PrivateKey> {
    if (this.#identity === undefined) {
      const key = await loadIdentity(this.#init.dataDir);
      this.#identity = { key, id: peerIdFromPrivateKey(key).toString() };
    }
    return this.#identity.key;
  }

  /** Addresses peers can dial, with this node's peer id (the announced registry addresses left out). */
  get addresses(): string[] {
    return this.#require()
      .getMultiaddrs()
      .filter((address) => !isRegistryAddress(address))
      .map((address) => address.toString());
  }

  async start(): Promise<void> {
    const privateKey = await this.load();
    const registryPort = (): number =>
      typeof this.#init.registryPort === 'function' ? this.#init.registryPort() : this.#init.registryPort;
    const node = await createNode(privateKey, this.#init, registryPort);
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
      this.#book.connected(id);
      liveness.connected(id);
      this.#armJoinTimer();
    });
    node.addEventListener('peer:disconnect', (event) => {
      const id = event.detail.toString();
      this.#book.disconnected(id);
      liveness.disconnected(id);
    });
    node.addEventListener('peer:identify', ({ detail }) => {
      const id = detail.peerId.toString();
      this.#book.identified(id, registryOrigin(detail.listenAddrs, remoteHost(detail.connection.remoteAddr)));
    });
    // kad-dht announces each finished self-lookup on the node's event bus.
    (node as unknown as EventTarget).addEventListener('kad-dht:query:self', () => this.#join());
    await serveRegistryPort(node, registryPort);
    const notices = new NoticeChannel(node, this.#log, (from, message) =>
      this.#messages.dispatch(from, message),
    );
    await notices.start();
    recordOwnAddresses(node, this.#log);
    this.#node = node;
    this.#proof = new MemberProof(node, privateKey, (id) => liveness.isGone(id));
    this.#notices = notices;
    this.#liveness = liveness;
    liveness.start();
    this.#joining = new Joining(node, this.#init, this.#log, () => this.#connected(node));
    await this.#joining.start();
  }

  async stop(): Promise<void> {
    this.#joining?.stop();
    clearTimeout(this.#joinTimer);
    this.#liveness?.stop();
    await this.#node?.stop();
    this.#node = undefined;
    this.#notices = undefined;
  }

  /**
   * Joined (the first self-lookup met the nearest nodes, which learnt of this one as it asked them), with a
   * non-empty table and a live connection. Every kad-dht query waits for the self-lookup, and kad-dht keeps
   * dead peers in its table for long: the table alone would keep a cut-off node "ready".
   */
  ready(): boolean {
    const node = this.#node;
    return node !== undefined && this.#joined && this.#connected(node);
  }

  /** The latest bootstrap named no node but this one; nodes that dial it later do not change that. */
  alone(): boolean {
    return this.#node !== undefined && this.#joining?.alone === true;
  }

  /**
   * Providers as kad-dht finds them: first from this node's own records (the k nearest to a key keep all
   * of them: in a cluster of up to 20 nodes, every node), then from the network. Each answer lists every
   * provider its sender knows, so the lookup ends at the first that names a live one. Those usable now are
   * handed out at once; those with an identify answer on the way (AddressBook.provider), as each comes.
   */
  async *lookup(key: string, signal: AbortSignal): AsyncIterable<Provider> {
    const node = this.#node;
    if (node === undefined) return;
    const self = node.peerId.toString();
    const seen = new Set<string>();
    for await (const event of node.services.dht.findProviders(await routingCid(key), { signal })) {
      if (event.name !== 'PROVIDER') continue;
      const waits: Promise<Provider | undefined>[] = [];
      for (const found of event.providers) {
        const id = found.id.toString();
        if (id === self || seen.has(id)) continue;
        seen.add(id);
        waits.push(this.#provider(id, found.multiaddrs, found.id, signal));
      }
      let live = false;
      for await (const provider of inTurn(waits)) {
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

  /** Nodes in the DHT routing table now. */
  tableSize(): number {
    const node = this.#node;
    return node === undefined ? 0 : (table(node)?.size ?? 0);
  }

  members(): string[] {
    const node = this.#node;
    if (node === undefined) return [];
    // kad-dht admits a node that connects only after pinging it, and a failed ping is not retried until a
    // query meets it again: the nodes that identified themselves are members from their first connection.
    const ids = new Set(this.#book.ids());
    for (const contact of table(node)?.kb?.toIterable() ?? []) ids.add(contact.peerId.toString());
    ids.delete(node.peerId.toString());
    return [...ids].filter((id) => this.#book.usable(id));
  }

  current(provider: Provider): Provider | undefined {
    if (this.#node === undefined || !this.#book.usable(provider.id)) return undefined;
    const registry = this.#book.registryOf(provider.id);
    return registry === undefined || registry === provider.registry
      ? provider
      : { id: provider.id, registry };
  }

  /**
   * A member's registry address, from what it announced. A member this node holds no connection to is
   * dialled first (proof of life, bounded by the caller's signal); a member known gone is refused.
   */
  async provider(id: string, signal: AbortSignal): Promise<Provider | undefined> {
    const node = this.#node;
    const peer = peerIdOf(id);
    if (
      node === undefined ||
      peer === undefined ||
      id === node.peerId.toString() ||
      this.#liveness?.isGone(id) === true
    )
      return undefined;
    if (node.getConnections(peer).length === 0) {
      try {
        await node.dial(peer, { signal: AbortSignal.any([signal, AbortSignal.timeout(MEMBER_TIMEOUT_MS)]) });
      } catch (err) {
        this.#log.debug({ peer: id, err }, 'member unreachable');
        return undefined;
      }
    }
    const stored = await node.peerStore.get(peer).catch(() => undefined);
    return this.#provider(id, stored?.addresses.map((address) => address.multiaddr) ?? [], peer, signal);
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

  /** Peer `id` as a provider (see AddressBook.provider); `recorded` are the addresses a lookup came with. */
  #provider(
    id: string,
    recorded: Multiaddr[],
    peer: PeerId,
    signal: AbortSignal,
  ): Promise<Provider | undefined> {
    const via = (): string | undefined => remoteHost(this.#node?.getConnections(peer)[0]?.remoteAddr);
    return this.#book.provider(id, recorded, via, signal);
  }
}
