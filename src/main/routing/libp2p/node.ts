import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface';
import { type KadDHT, kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import type { Logger } from '../../log/logger.js';
import type { Bootstrapper } from '../bootstrap.js';
import { IndexedDatastore } from './datastore.js';
import { INBOUND_LIMITS, InboundGate } from './inbound-gate.js';
import { registryAddresses } from './registry-address.js';

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

export type Node = Libp2p<{ dht: KadDHT; identify: unknown; ping: unknown }>;

/** kad-dht's routing table: public on the implementation but missing from the KadDHT interface type. */
export function table(
  node: Node,
): { size: number; kb?: { toIterable(): Iterable<{ peerId: PeerId }> } } | undefined {
  return (node.services.dht as unknown as { routingTable?: ReturnType<typeof table> }).routingTable;
}

/** The libp2p node of a router: TCP, the private network's key if any, noise, yamux, and kad-dht. */
export async function createNode(
  privateKey: PrivateKey,
  init: Libp2pRouterInit,
  registryPort: () => number,
): Promise<Node> {
  return (await createLibp2p({
    privateKey,
    // kad-dht answers each lookup from a prefix query: indexed, not a walk over every record held.
    datastore: new IndexedDatastore(),
    addresses: {
      listen: [`/ip4/${init.host}/tcp/${init.port}`],
      // The registry's address travels with this node's addresses: in identify and in provider records.
      announceFilter: (addresses) => [...addresses, ...registryAddresses(addresses, registryPort())],
    },
    transports: [tcp()],
    // A silent socket holds a handshake slot until the upgrade times out: more slots, a shorter timeout,
    // and a cap per address keep a few pods from locking nodes out of the cluster.
    connectionManager: {
      maxIncomingPendingConnections: INBOUND_LIMITS.pending,
      inboundUpgradeTimeout: INBOUND_LIMITS.upgradeTimeoutMs,
    },
    connectionGater: new InboundGate(),
    ...(init.psk === undefined ? {} : { connectionProtector: preSharedKey({ psk: init.psk }) }),
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
        querySelfInterval: init.refreshIntervalMs ?? 30_000,
        // Every query waits for the first self-lookup, which kad-dht starts 1 s after start by default:
        // a node that had just joined answered its first requests with misses. Start it at once.
        initialQuerySelfInterval: 0,
      }),
    },
  })) as unknown as Node;
}

/**
 * Dials every bootstrap entry but this node's own (so one list can serve every node); failures are logged.
 * Resolves with how many entries named another node.
 */
export async function dialAll(
  node: Node,
  entries: readonly string[],
  timeoutMs: number,
  log: Logger,
): Promise<number> {
  const self = node.peerId.toString();
  const own = new Set(node.getMultiaddrs().map((address) => address.decapsulateCode(421).toString()));
  let others = 0;
  for (const entry of entries) {
    const address = multiaddr(entry);
    const peer = address.getComponents().find((component) => component.name === 'p2p')?.value;
    if (peer === self || own.has(address.decapsulateCode(421).toString())) continue;
    others++;
    try {
      await node.dial(address, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      log.debug({ address: entry, err }, 'bootstrap peer unreachable');
    }
  }
  return others;
}

/** Answers nodes of the previous version, which ask every provider for its registry port. */
export async function serveRegistryPort(node: Node, port: () => number): Promise<void> {
  await node.handle(REGISTRY_PROTOCOL, (stream) => {
    // One JSON line; the asker stops at the newline (stream end is not signalled promptly by every muxer).
    stream.send(new TextEncoder().encode(`${JSON.stringify({ port: port() })}\n`));
    void stream.close().catch(() => undefined);
  });
}

/**
 * Keeps the node's own addresses in its peer store. kad-dht answers GET_PROVIDERS with each provider's
 * addresses from the peer store, and drops providers without any; libp2p keeps none for the node itself, so
 * a holder asked directly left itself out, and a node that had just joined found nothing when the holder
 * was the one it asked.
 */
export function recordOwnAddresses(node: Node, log: Logger): void {
  const record = (): void => {
    void node.peerStore.patch(node.peerId, { multiaddrs: node.getMultiaddrs() }).catch((err: unknown) => {
      log.warn({ err }, 'could not record this node’s own addresses');
    });
  };
  node.addEventListener('self:peer:update', record);
  record();
}
