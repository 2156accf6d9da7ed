import { STATUS_CODES } from 'node:http';
import { isShoalError, RangeNotSatisfiableError, type ShoalError } from '../errors.js';
import type { BlobReader } from '../store/store.js';

export type Headers = ReadonlyArray<readonly [string, string]>;

/** What a handler answers; only the server turns it into bytes on a socket. */
export type Reply =
  | { kind: 'full'; status: number; headers: Headers; body: Buffer | undefined }
  | {
      kind: 'stream';
      status: number;
      headers: Headers;
      reader: BlobReader;
      length: number;
      /** The member a peer request proved it comes from: its upload is limited per member. */
      member?: string;
    };

export type FullReply = Extract<Reply, { kind: 'full' }>;

export const API_VERSION_HEADER = ['Docker-Distribution-API-Version', 'registry/2.0'] as const;

/** `200 OK`: one table of reason phrases (Node's) for every listener. */
export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/** A whole reply whose body is `contentType`; `api` adds the distribution API version header. */
export function bodyReply(
  status: number,
  contentType: string,
  body: Buffer,
  head: boolean,
  extra: Headers = [],
  api = true,
): FullReply {
  const headers: Headers = [
    ['Content-Type', contentType],
    ['Content-Length', String(body.length)],
    ...(api ? [API_VERSION_HEADER] : []),
    ...extra,
  ];
  return { kind: 'full', status, headers, body: head ? undefined : body };
}

/** A plain-text reply (probes): no API version header, it is not a registry answer. */
export function textReply(status: number, text: string, head: boolean): FullReply {
  return bodyReply(status, 'text/plain', Buffer.from(`${text}\n`), head, [], false);
}

/** The OCI JSON error body for any error; errors shoal did not raise on purpose become a 500. */
export function errorReply(err: unknown, head: boolean): FullReply {
  const known: ShoalError | undefined = isShoalError(err) ? err : undefined;
  const status = known?.status ?? 500;
  const entry: Record<string, unknown> = {
    code: known?.ociCode ?? 'UNKNOWN',
    message: known?.publicMessage ?? known?.message ?? 'internal error',
  };
  if (known?.detail !== undefined && known.publicMessage === undefined) entry.detail = known.detail;
  const body = Buffer.from(JSON.stringify({ errors: [entry] }));
  const extra: Array<readonly [string, string]> = [];
  if (err instanceof RangeNotSatisfiableError) extra.push(['Content-Range', `bytes */${err.size}`]);
  if (status === 405) extra.push(['Allow', 'GET, HEAD']);
  return bodyReply(status, 'application/json', body, head, extra);
}
