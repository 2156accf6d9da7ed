import { type Digest, isDigest } from '../oci/digest.js';
import { canonicalImageName } from '../oci/reference.js';

/**
 * A notice one member sends another over the router's own channel: authenticated by peer id, encrypted,
 * and (with `--p2p-psk-file`) open to members of the private network only. Nothing on the registry port
 * changes state; these travel here instead.
 */
export type PeerMessage =
  /**
   * A tag mapping (`registry/repo:tag`) was invalidated at `at` (ms since the epoch); `operator` when the
   * sender is the node the operator asked (not a relay), which has its own allowance at the receiver.
   */
  | { kind: 'tag-invalidated'; name: string; at: number; operator?: true }
  /** Content the receiver served under `digest` failed its check: it should re-check its copy. */
  | { kind: 'corrupt'; digest: Digest };

/** The kinds of notice. */
export type MessageKind = PeerMessage['kind'];

/**
 * What a receiver does with a notice of one kind from member `from`; resolves whether it took it (a valid
 * notice is taken even when it is not news to the receiver).
 */
export type MessageHandler<K extends MessageKind = MessageKind> = (
  from: string,
  message: Extract<PeerMessage, { kind: K }>,
) => Promise<boolean>;

/** Each feature handles its own kind of notice; a kind nobody handles is refused. */
export class MessageDispatch {
  // Keyed by kind, each handler is called only with messages of its kind; the map cannot say so.
  readonly #handlers = new Map<MessageKind, (from: string, message: PeerMessage) => Promise<boolean>>();

  on<K extends MessageKind>(kind: K, handler: MessageHandler<K>): void {
    this.#handlers.set(kind, handler as (from: string, message: PeerMessage) => Promise<boolean>);
  }

  async dispatch(from: string, message: PeerMessage): Promise<boolean> {
    const handler = this.#handlers.get(message.kind);
    return handler === undefined ? false : handler(from, message);
  }
}

/** Largest encoded message accepted; a notice is a name and a time. */
export const MAX_MESSAGE_BYTES = 1024;

/** How far ahead of this node's clock an invalidation may be dated (clock skew between nodes). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/** One message as one JSON line. */
export function encodeMessage(message: PeerMessage): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(message)}\n`);
}

/**
 * Parses and checks a message from another node; undefined for anything malformed. A member is trusted to
 * be a member, not to be right: names must be canonical, digests well formed, and an invalidation may not
 * be dated so far ahead that no later confirmation could ever lift it.
 */
export function decodeMessage(text: string, now = Date.now()): PeerMessage | undefined {
  if (text.length > MAX_MESSAGE_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  if (fields.kind === 'corrupt') {
    return typeof fields.digest === 'string' && isDigest(fields.digest)
      ? { kind: 'corrupt', digest: fields.digest as Digest }
      : undefined;
  }
  if (fields.kind !== 'tag-invalidated' || typeof fields.name !== 'string') return undefined;
  const at = fields.at;
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at <= 0 || at > now + MAX_FUTURE_SKEW_MS)
    return undefined;
  try {
    if (canonicalImageName(fields.name) !== fields.name) return undefined;
  } catch {
    return undefined;
  }
  if (fields.operator !== undefined && fields.operator !== true) return undefined;
  return {
    kind: 'tag-invalidated',
    name: fields.name,
    at,
    ...(fields.operator === true ? { operator: true } : {}),
  };
}
