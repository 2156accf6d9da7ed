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
  const headers: Array<readonly [string, string]> = [
    ['Content-Type', 'application/json'],
    ['Content-Length', String(body.length)],
    API_VERSION_HEADER,
  ];
  if (err instanceof RangeNotSatisfiableError) headers.push(['Content-Range', `bytes */${err.size}`]);
  if (status === 405) headers.push(['Allow', 'GET, HEAD']);
  return { kind: 'full', status, headers, body: head ? undefined : body };
}
