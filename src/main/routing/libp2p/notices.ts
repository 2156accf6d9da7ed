import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { Logger } from '../../log/logger.js';
import { setBounded } from '../../util/bounded-map.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, type PeerMessage } from '../messages.js';

/** Notices between members (tag invalidations, corrupt reports): one JSON line each way per stream. */
export const NOTICE_PROTOCOL = '/shoal/notice/1.0.0';

/** Longest a receiver waits for a notice's line once the stream is open. */
const READ_TIMEOUT_MS = 2000;

/**
 * Notices each member may send per second, and the burst it may save up: a member flooding this node is
 * refused past it (the tag book behind it writes to disk).
 */
const NOTICES_PER_SECOND = 20;
const NOTICE_BURST = 200;

/** Reads one newline-terminated line of at most MAX_MESSAGE_BYTES; undefined when none comes. */
async function readLine(stream: Stream, signal: AbortSignal): Promise<string | undefined> {
  let text = '';
  const aborted = new Promise<undefined>((resolve) => {
    if (signal.aborted) resolve(undefined);
    signal.addEventListener('abort', () => resolve(undefined), { once: true });
  });
  const read = (async (): Promise<string | undefined> => {
    for await (const chunk of stream) {
      text += new TextDecoder().decode(chunk.subarray());
      const end = text.indexOf('\n');
      if (end !== -1) return text.slice(0, end);
      if (text.length > MAX_MESSAGE_BYTES) return undefined;
    }
    return undefined;
  })();
  return Promise.race([read, aborted]);
}

/** A token bucket per member: NOTICES_PER_SECOND, bursting to NOTICE_BURST. */
class NoticeBudget {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  take(id: string, now = performance.now()): boolean {
    const bucket = this.#buckets.get(id) ?? { tokens: NOTICE_BURST, at: now };
    bucket.tokens = Math.min(NOTICE_BURST, bucket.tokens + ((now - bucket.at) / 1000) * NOTICES_PER_SECOND);
    bucket.at = now;
    setBounded(this.#buckets, id, bucket, 10_000);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

/** Serves NOTICE_PROTOCOL: each stream carries one notice from the peer the connection authenticated. */
export class NoticeChannel {
  readonly #node: Libp2p;
  readonly #log: Logger;
  readonly #budget = new NoticeBudget();
  readonly #handle: (from: string, message: PeerMessage) => Promise<boolean>;

  constructor(node: Libp2p, log: Logger, handle: (from: string, message: PeerMessage) => Promise<boolean>) {
    this.#node = node;
    this.#log = log;
    this.#handle = handle;
  }

  async start(): Promise<void> {
    await this.#node.handle(NOTICE_PROTOCOL, (stream, connection) => this.#receive(stream, connection));
  }

  /** Sends one notice and waits for the answer; false on any failure, never rejects. */
  async tell(peer: PeerId, message: PeerMessage, signal: AbortSignal): Promise<boolean> {
    let stream: Stream | undefined;
    try {
      stream = await this.#node.dialProtocol(peer, NOTICE_PROTOCOL, { signal });
      stream.send(encodeMessage(message));
      const answer = await readLine(stream, signal);
      return answer !== undefined && (JSON.parse(answer) as { taken?: unknown }).taken === true;
    } catch (err) {
      this.#log.debug({ peer: peer.toString(), err, kind: message.kind }, 'notice not delivered');
      return false;
    } finally {
      stream?.abort(new Error('done'));
    }
  }

  async #receive(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    let taken = false;
    try {
      const line = await readLine(stream, AbortSignal.timeout(READ_TIMEOUT_MS));
      const message = line === undefined ? undefined : decodeMessage(line);
      if (message === undefined) this.#log.warn({ peer: from }, 'malformed notice from a member; refused');
      else if (!this.#budget.take(from))
        this.#log.warn({ peer: from }, 'notice over the member’s rate; refused');
      else taken = await this.#handle(from, message);
    } catch (err) {
      this.#log.warn({ peer: from, err }, 'notice handling failed');
    }
    try {
      stream.send(new TextEncoder().encode(`${JSON.stringify({ taken })}\n`));
      await stream.close({ signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
    } catch {
      stream.abort(new Error('closed'));
    }
  }
}
