import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { UpstreamResponse } from './upstream.js';

/** Sent with every upstream request. */
export const USER_AGENT = 'shoal-pull-through';

/** A request's options inside the client: `deadlineAt` (epoch ms) bounds the wait for its headers. */
export type SendOptions = {
  method: 'GET' | 'HEAD' | 'POST';
  /** A form body (a token request's refresh token), sent as application/x-www-form-urlencoded. */
  form?: URLSearchParams;
  accept?: string;
  range?: string;
  signal?: AbortSignal | undefined;
  deadlineAt?: number;
};

/**
 * One HTTP request to an upstream registry (the CDN it redirects to, its token realm), on pooled keep-alive connections,
 * resolved at its headers with the body paused. Every connection resolves its name through `lookup` (the
 * guard's), so it goes only where the operator allowed, checked at connect time.
 */
export class UpstreamSender {
  readonly #http = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  readonly #https = new HttpsAgent({ keepAlive: true, maxSockets: 64 });
  readonly #lookup: LookupFunction;
  readonly #timeoutMs: number;

  constructor(lookup: LookupFunction, timeoutMs: number) {
    this.#lookup = lookup;
    this.#timeoutMs = timeoutMs;
  }

  send(url: string, opts: SendOptions, authorization: string | undefined): Promise<UpstreamResponse> {
    const secure = url.startsWith('https:');
    // Named, so a registry's access log tells shoal's fetches from containerd's own fallbacks.
    const headers: Record<string, string> = { accept: opts.accept ?? '*/*', 'user-agent': USER_AGENT };
    if (opts.range !== undefined) headers.range = opts.range;
    if (authorization !== undefined) headers.authorization = authorization;
    const body = opts.form?.toString();
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const send = secure ? httpsRequest : httpRequest;
      const req = send(
        url,
        {
          method: opts.method,
          headers,
          agent: secure ? this.#https : this.#http,
          lookup: this.#lookup,
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        },
        (res) => {
          clearTimeout(timer);
          res.pause();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
        },
      );
      const waitMs = Math.max(1, (opts.deadlineAt ?? Date.now() + this.#timeoutMs) - Date.now());
      const timer = setTimeout(
        () => req.destroy(new Error(`no headers within --upstream-timeout (${this.#timeoutMs} ms)`)),
        waitMs,
      );
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(body);
    });
  }
}
