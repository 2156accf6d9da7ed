import { type CapturedRequest, captureClaims } from './answer.js';
import { type FullReply, type Reply, statusLine } from './reply.js';
import type { HttpRequest, HttpResponse } from './uws.js';

// Moving requests and replies across uWebSockets.js: what the registry listener copies out of a request before
// its first await, and how a reply's head and body are written.

/** Copies what the handler needs out of a uWS request (which is dead after the first await). */
export function capture(req: HttpRequest): CapturedRequest {
  const path = req.getUrl();
  const query = req.getQuery() ?? '';
  let headerBytes = 0;
  // Go clients (podman, skopeo) send one Accept line per media type; getHeader would see only the first.
  const accepts: string[] = [];
  req.forEach((key, value) => {
    headerBytes += key.length + value.length + 4;
    if (key === 'accept') accepts.push(value);
  });
  const range = req.getHeader('range');
  const accept = accepts.join(', ');
  return {
    ...captureClaims((name) => req.getHeader(name)),
    // Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET.
    method: req.getCaseSensitiveMethod(),
    path,
    query,
    range: range === '' ? undefined : range,
    accept: accept === '' ? undefined : accept,
    urlBytes: path.length + query.length + 1,
    headerBytes,
  };
}

/** Writes status and headers. Content-Length is written by hand only for bodiless replies: uWS adds its own. */
export function writeHead(
  res: HttpResponse,
  status: number,
  headers: Reply['headers'],
  bodiless: boolean,
): void {
  res.writeStatus(statusLine(status));
  for (const [name, value] of headers) {
    if (!bodiless && name === 'Content-Length') continue;
    res.writeHeader(name, value);
  }
}

/** Writes a whole reply, head and body. */
export function writeFull(res: HttpResponse, reply: FullReply): void {
  writeHead(res, reply.status, reply.headers, reply.body === undefined);
  // endWithoutBody(length) crashes this uWS build; the bare call keeps our Content-Length header.
  if (reply.body === undefined) res.endWithoutBody();
  else res.end(reply.body);
}
