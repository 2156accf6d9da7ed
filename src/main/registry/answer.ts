import { HeadersTooLargeError, UriTooLongError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import {
  MIRRORED_HEADER,
  OWNER_FETCH_HEADER,
  PEER_ID_HEADER,
  PEER_SIGNATURE_HEADER,
  PEER_TIME_HEADER,
} from '../peer/protocol.js';
import type { PullHandler } from './handler.js';
import { errorReply, type Reply } from './reply.js';
import type { PullRequest } from './request.js';

/** A request copied out of its transport, with the sizes the limits are checked against. */
export interface CapturedRequest extends PullRequest {
  urlBytes: number;
  headerBytes: number;
}

export interface RequestLimits {
  /** Longest request target accepted (414 past it). */
  maxUrlBytes: number;
  /** Largest total of request headers accepted (431 past it). */
  maxHeaderBytes: number;
}

/** The limits a listener's init asks for, the defaults (4 KiB target, 16 KiB headers) where it is silent. */
export function limitsOf(init: Partial<RequestLimits>): RequestLimits {
  return { maxUrlBytes: init.maxUrlBytes ?? 4096, maxHeaderBytes: init.maxHeaderBytes ?? 16 << 10 };
}

/** The peer-treatment claims of a request, read through `header` (lower-case name in, '' when absent). */
export function captureClaims(
  header: (name: string) => string,
): Pick<PullRequest, 'mirrored' | 'ownerFetch' | 'peer'> {
  const id = header(PEER_ID_HEADER);
  return {
    // Any value claims peer treatment, so a claim that is not exactly 'true' is still checked.
    mirrored: header(MIRRORED_HEADER) !== '',
    ownerFetch: header(OWNER_FETCH_HEADER) !== '',
    peer:
      id === ''
        ? undefined
        : { id, time: header(PEER_TIME_HEADER), signature: header(PEER_SIGNATURE_HEADER) },
  };
}

/**
 * What every listener answers a request with: the limits first, then the handler; any error becomes its
 * OCI JSON reply, and a 5xx is logged. One place sees every request, whichever listener it came through.
 */
export async function answer(
  handler: PullHandler,
  request: CapturedRequest,
  limits: RequestLimits,
  log: Logger,
): Promise<Reply> {
  try {
    if (request.urlBytes > limits.maxUrlBytes)
      throw new UriTooLongError(`request target over ${limits.maxUrlBytes} bytes`);
    if (request.headerBytes > limits.maxHeaderBytes)
      throw new HeadersTooLargeError(`request headers over ${limits.maxHeaderBytes} bytes`);
    return await handler.handle(request);
  } catch (err) {
    const reply = errorReply(err, request.method === 'HEAD');
    if (reply.status >= 500) log.error({ err, path: request.path, method: request.method }, 'request failed');
    return reply;
  }
}
