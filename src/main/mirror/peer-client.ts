import { Agent, type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { ShoalError } from '../errors.js';

/** Marks a request as coming from a peer: the receiver serves it from its own store only, so no loops. */
export const MIRRORED_HEADER = 'x-shoal-mirrored';

/** POST here plus a digest: the content this node served under that digest failed its check. */
export const CORRUPT_REPORT_PATH = '/_shoal/v1/corrupt/';

export class PeerRequestError extends ShoalError {
  override readonly code = 'PEER_REQUEST_FAILED';
  override readonly status = 502;
  override readonly ociCode = 'UNAVAILABLE';
}

export interface PeerResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Paused body; the caller pulls from it (backpressure reaches the peer's socket). */
  body: IncomingMessage;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One request to a peer's registry. Resolves when the status line and headers arrive (2xx only; any other
 * status rejects and the body is discarded). `timeoutMs` bounds the wait for headers.
 */
export function requestPeer(
  registry: string,
  path: string,
  options: { method: 'GET' | 'HEAD'; range?: string | undefined; signal: AbortSignal; timeoutMs: number },
): Promise<PeerResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { [MIRRORED_HEADER]: 'true', accept: '*/*' };
    if (options.range !== undefined) headers.range = options.range;
    const req = request(
      `${registry}${path}`,
      { method: options.method, headers, agent, signal: options.signal },
      (res) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          res.resume();
          reject(new PeerRequestError(`peer ${registry} answered ${status} for ${path}`));
          return;
        }
        res.pause();
        resolve({ status, headers: res.headers, body: res });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new PeerRequestError(`peer ${registry} sent no headers in ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(
        err instanceof PeerRequestError
          ? err
          : new PeerRequestError(`peer ${registry}: ${err.message}`, { cause: err }),
      );
    });
    req.end();
  });
}

/**
 * Tells a peer that content it served did not match its digest, so it re-checks its copy. Best effort:
 * resolves whether the peer took the report, never rejects.
 */
export function reportCorrupt(registry: string, digest: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${registry}${CORRUPT_REPORT_PATH}${digest}`,
      { method: 'POST', headers: { [MIRRORED_HEADER]: 'true', 'content-length': '0' }, agent },
      (res) => {
        res.resume();
        resolve(res.statusCode === 202);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
