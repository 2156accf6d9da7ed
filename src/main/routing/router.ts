import type { MessageHandler, MessageKind, PeerMessage } from './messages.js';

/** A node that advertised a key, with the address of its registry API as the node itself reported it. */
export interface Provider {
  /** Stable node identity (a libp2p peer id for the libp2p router). */
  readonly id: string;
  /** Base URL of the node's OCI registry API, e.g. `http://10.0.0.5:5000`. */
  readonly registry: string;
}

/**
 * Finds which nodes hold content. Keys are digest strings (`sha256:…`) for content and
 * `<registry>/<repo>:<tag>` for tags.
 */
export interface Router {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True while this node knows at least one other node (it can route). */
  ready(): boolean;
  /**
   * True when this node has nobody to know: its bootstrap names no other node. Such a node serves what it
   * holds and counts as ready (Kubernetes would otherwise hold a one-node cluster's pod unready forever).
   */
  alone(): boolean;
  /**
   * Yields other live nodes that advertised `key`, as they are found (never this node, never a node
   * known to be gone). Ends when the search is exhausted, when `signal` aborts, or after the first answer
   * that named a live provider: each answer lists every provider its sender knows, and a request needs one.
   * A node that advertised a moment ago may be missing from such an answer until its record has arrived.
   */
  lookup(key: string, signal: AbortSignal): AsyncIterable<Provider>;
  /** Announces that this node holds `keys`, and keeps announcing them until withdrawn. */
  advertise(keys: readonly string[]): Promise<void>;
  /** Stops announcing `keys` (content deleted). */
  withdraw(keys: readonly string[]): Promise<void>;
  /**
   * `provider` as this node knows it now: undefined once it is known gone, with the registry address of its
   * latest announcement when it has announced again (restarted elsewhere), else as it was. Synchronous, so
   * providers remembered from an earlier lookup can be re-checked before each use.
   */
  current(provider: Provider): Provider | undefined;
  /** This node's id, as other nodes know it. */
  readonly selfId: string;
  /**
   * Ids of the other live nodes this node knows: its routing table, and every node that has identified
   * itself to this one, less nodes known to be gone. Every owner election starts from this list.
   */
  members(): string[];
  /** The registry address of node `id`, asked of the node itself (proof of life); undefined if it is gone. */
  provider(id: string, signal: AbortSignal): Promise<Provider | undefined>;
  /**
   * Sends `message` to member `id` over the router's own authenticated channel; resolves whether the member
   * took it (false when it refused, failed or did not answer within `signal`). Never rejects.
   */
  tell(id: string, message: PeerMessage, signal: AbortSignal): Promise<boolean>;
  /** What is done with notices of `kind` other members send; a kind without a handler is refused. */
  onMessage<K extends MessageKind>(kind: K, handler: MessageHandler<K>): void;
  /** Signs `payload` with this node's identity, so another member can tell the request is this node's. */
  sign(payload: Uint8Array): Promise<Uint8Array>;
  /**
   * True when `signature` over `payload` was made by node `id`, and `id` is a member: known to this node's
   * network now, or reached within `signal`. False for this node itself and for anything malformed.
   */
  verifyMember(id: string, payload: Uint8Array, signature: Uint8Array, signal: AbortSignal): Promise<boolean>;
}
