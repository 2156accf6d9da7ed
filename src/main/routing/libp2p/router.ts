// libp2p calls Promise.withResolvers (Node 22+); whoever uses this router gets the polyfill first.
import '../../polyfill.js';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { type KadDHT, kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import type { Logger } from '../../log/logger.js';
import { TimeoutError, withTimeout } from '../../util/timeout.js';
import { httpOrigin } from '../../util/url.js';
import type { Bootstrapper } from '../bootstrap.js';
import type { Provider, Router } from '../router.js';
import { loadIdentity } from './identity.js';
import { routingCid } from './keys.js';

export const DHT_PROTOCOL = '/shoal/kad/1.0.0';
export const REGISTRY_PROTOCOL = '/shoal/registry/1.0.0';

export interface Libp2pRouterInit {
  /** Interface and TCP port the router listens on (port 0 picks one). */
  host: string;
  port: number;
  /** Holds the node identity. */
  dataDir: string;
  /** Port of this node's registry API, told to peers that ask (a function when known only after listen). */
  registryPort: number | (() => number);
  /** Multiaddrs to join through (peer id optional), asked for at start and when the table empties. */
  bootstrap?: Bootstrapper;
  /** Longest wait to reach a provider before it counts as gone; default 1000 ms. */
  peerTimeoutMs?: number;
  /** How long a provider that could not be reached is skipped; default 3 s (a busy peer must not be lost long). */
  quarantineMs?: number;
  /** How often an empty routing table bootstraps again (doubling up to 8×); default 1000 ms. */
  rebootstrapMs?: number;
  /**
   * How often the node looks itself up in the DHT, meeting the nodes nearest to it; default 30 s
   * (`--router-refresh-interval`). kad-dht's own default is 5 min, which left nodes that joined at about
   * the same time unaware of each other for minutes, so their owner elections disagreed.
   */
  refreshIntervalMs?: number;
}

type Node = Libp2p<{ dht: KadDHT; identify: unknown; ping: unknown }>;

/** Longest wait for an elected owner's registry address; the caller's own deadline is usually shorter. */
const MEMBER_TIMEOUT_MS = 30_000;

/** Reads one newline-terminated message of at most 1 KiB. */
async function readLine(stream: Stream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += new TextDecoder().decode(chunk.subarray());
    const end = text.indexOf('\n');
    if (end !== -1) return text.slice(0, end);
    if (text.length > 1024) break;
  }
  throw new Error('peer sent no registry address');
}

/** Kademlia routing over libp2p on shoal's own protocol prefix. The only module that imports libp2p. */
export class Libp2pRouter implements Router {
  readonly #init: Libp2pRouterInit;
  readonly #log: Logger;
  #node: Node | undefined;
  readonly #quarantine = new Map<string, number>();
  /** Members whose connection failed (not merely slow): out of the member list for a while. */
  readonly #gone = new Map<string, number>();
  #rebootstrap: NodeJS.Timeout | undefined;
  #backoff = 1;

  constructor(deps: { log: Logger }, init: Libp2pRouterInit) {
    this.#log = deps.log;
    this.#init = init;
  }

  get peerId(): string {
    return this.#require().peerId.toString();
  }

  /** Addresses peers can dial, with this node's peer id. */
  get addresses(): string[] {
    return this.#require()
      .getMultiaddrs()
      .map((address) => address.toString());
  }

  async start(): Promise<void> {
    const privateKey = await loadIdentity(this.#init.dataDir);
    const node = (await createLibp2p({
      privateKey,
      addresses: { listen: [`/ip4/${this.#init.host}/tcp/${this.#init.port}`] },
      transports: [tcp()],
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
        }),
      },
    })) as unknown as Node;
    await node.handle(REGISTRY_PROTOCOL, (stream) => this.#tellRegistry(stream));
    this.#node = node;
    await this.#bootstrap();
    this.#scheduleRebootstrap();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#rebootstrap);
    await this.#node?.stop();
    this.#node = undefined;
  }

  /**
   * Non-empty routing table and at least one live connection. kad-dht keeps dead peers in its table for a
   * long time, so the table alone would keep a cut-off node "ready" (and stop it from bootstrapping again).
   */
  ready(): boolean {
    const node = this.#node;
    if (node === undefined) return false;
    // routingTable is public on the implementation but missing from the KadDHT interface type.
    const dht = node.services.dht as unknown as { routingTable?: { size: number } };
    return (dht.routingTable?.size ?? 0) > 0 && node.getConnections().length > 0;
  }

  async *lookup(key: string, signal: AbortSignal): AsyncIterable<Provider> {
    const node = this.#require();
    const seen = new Set<string>();
    for await (const found of node.contentRouting.findProviders(await routingCid(key), { signal })) {
      const id = found.id.toString();
      if (id === node.peerId.toString() || seen.has(id) || (this.#quarantine.get(id) ?? 0) > Date.now())
        continue;
      seen.add(id);
      const registry = await this.#registryAddress(found.id, found.multiaddrs, signal);
      if (registry !== undefined) yield { id, registry };
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
    // routingTable is public on the implementation but missing from the KadDHT interface type.
    const dht = node.services.dht as unknown as {
      routingTable?: { kb?: { toIterable(): Iterable<{ peerId: PeerId }> } };
    };
    const now = Date.now();
    const ids: string[] = [];
    for (const contact of dht.routingTable?.kb?.toIterable() ?? []) {
      const id = contact.peerId.toString();
      if ((this.#gone.get(id) ?? 0) <= now) ids.push(id);
    }
    return ids;
  }

  /**
   * A member's registry address. Asked of a node elected to fetch from upstream, which may be too busy to
   * answer within the lookup's 1 s (eight nodes starting one cold pull at once): the caller's signal bounds
   * the wait instead. Always asked, never cached: a restarted member may listen somewhere else.
   */
  async provider(id: string, signal: AbortSignal): Promise<Provider | undefined> {
    // Only a member known gone is refused; one that was merely slow for a lookup is asked (patiently).
    if ((this.#gone.get(id) ?? 0) > Date.now()) return undefined;
    let peer: PeerId;
    try {
      peer = peerIdFromString(id);
    } catch {
      return undefined;
    }
    const registry = await this.#registryAddress(peer, [], signal, MEMBER_TIMEOUT_MS);
    return registry === undefined ? undefined : { id, registry };
  }

  /** Marks a provider as unreachable, so lookups skip it for a while; `gone` also drops it from members. */
  #quarantinePeer(id: string, gone: boolean): void {
    const until = Date.now() + (this.#init.quarantineMs ?? 3000);
    this.#quarantine.set(id, until);
    if (gone) this.#gone.set(id, until);
  }

  #require(): Node {
    if (this.#node === undefined) throw new Error('router is not started');
    return this.#node;
  }

  #tellRegistry(stream: Stream): void {
    // One JSON line; the asker stops at the newline (stream end is not signalled promptly by every muxer).
    const port =
      typeof this.#init.registryPort === 'function' ? this.#init.registryPort() : this.#init.registryPort;
    stream.send(new TextEncoder().encode(`${JSON.stringify({ port })}\n`));
    void stream.close().catch(() => undefined);
  }

  /**
   * Asks the provider itself for its registry port (nodes may share an IP), and pairs it with the IP this
   * node reaches it on. Asked on every lookup (one round trip on an open connection), so the answer is
   * also proof of life: a provider that cannot answer in time is quarantined, which is how records of a
   * dead node stop being used within seconds instead of when they expire.
   */
  async #registryAddress(
    peer: PeerId,
    addresses: Multiaddr[],
    signal: AbortSignal,
    capMs = this.#init.peerTimeoutMs ?? 1000,
  ): Promise<string | undefined> {
    const id = peer.toString();
    const node = this.#require();
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(capMs)]);
    try {
      if (addresses.length > 0) await node.peerStore.merge(peer, { multiaddrs: addresses });
      const stream = await node.dialProtocol(peer, REGISTRY_PROTOCOL, { signal: timeout });
      const text = await withTimeout(readLine(stream), capMs, `registry address of ${id}`);
      stream.abort(new Error('done'));
      const { port } = JSON.parse(text) as { port: number };
      const remote = node.getConnections(peer)[0]?.remoteAddr;
      const host = remote
        ?.getComponents()
        .find((component) => ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(component.name))?.value;
      if (host === undefined || !Number.isInteger(port))
        throw new Error(`peer ${id} sent no usable registry address`);
      return httpOrigin(host, port);
    } catch (err) {
      if (signal.aborted) return undefined;
      // A member too busy to answer in time is skipped by lookups for a while, but stays a member: taking
      // it out would change the owner this node elects while the others still elect it.
      const slow = timeout.aborted || err instanceof TimeoutError;
      this.#log.debug({ peer: id, err, slow }, 'provider unreachable; quarantined');
      this.#quarantinePeer(id, !slow);
      return undefined;
    }
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

  /** An empty routing table means this node is cut off: join again, backing off while that fails. */
  #scheduleRebootstrap(): void {
    const base = this.#init.rebootstrapMs ?? 1000;
    this.#rebootstrap = setTimeout(async () => {
      if (this.#node === undefined) return;
      if (this.ready()) this.#backoff = 1;
      else {
        await this.#bootstrap();
        this.#backoff = Math.min(this.#backoff * 2, 8);
      }
      this.#scheduleRebootstrap();
    }, base * this.#backoff);
    this.#rebootstrap.unref();
  }
}
