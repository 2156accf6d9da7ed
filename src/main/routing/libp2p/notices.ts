import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { Logger } from '../../log/logger.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, type PeerMessage } from '../messages.js';
import { NoticeBudget, type NoticeClass } from './notice-budget.js';

/** The allowance a notice is counted against. */
const classOf = (message: PeerMessage): NoticeClass =>
  message.kind === 'tag-invalidated' && message.operator === true ? 'operator' : 'member';

/** Notices between members (tag invalidations, corrupt reports): one JSON line each way per stream. */
export const NOTICE_PROTOCOL = '/shoal/notice/1.0.0';

/** Longest a receiver waits for a notice's line once the stream is open. */
const READ_TIMEOUT_MS = 2000;

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

/** Serves NOTICE_PROTOCOL: each stream carries one notice from the peer the connection authenticated. */
export class NoticeChannel {
  readonly #node: Libp2p;
  readonly #log: Logger;
  readonly #budget = new NoticeBudget();
  /** Notices refused for their allowance since the last warning; a flood is told once every 10 s. */
  #refused = 0;
  #warnedAt = Number.NEGATIVE_INFINITY;
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
      else if (!this.#budget.take(from, classOf(message))) this.#overAllowance(from, message);
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

  #overAllowance(peer: string, message: PeerMessage): void {
    this.#refused++;
    const now = performance.now();
    if (now - this.#warnedAt < 10_000) return;
    this.#log.warn(
      { peer, class: classOf(message), refused: this.#refused },
      'notices over their allowance; refused',
    );
    this.#refused = 0;
    this.#warnedAt = now;
  }
}
