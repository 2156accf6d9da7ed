import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { UpstreamContent } from './lying-upstream.js';

/** One request a server of the pair saw. */
export interface SeenRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  range: string | undefined;
}

const USER = 'alice';
const PASSWORD = 'secret';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Parses `bytes=a-` / `bytes=a-b` against `size`; undefined for anything else. */
function byteRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  const match = /^bytes=(\d+)-(\d*)$/.exec(header ?? '');
  if (match === null) return undefined;
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  return start <= end ? { start, end } : undefined;
}

/**
 * A registry that behaves like Docker Hub, GHCR or ECR for blobs: it wants Basic credentials, and answers
 * every blob GET with a 307 to a second server (its "CDN") on a signed URL with an expiry, as object storage
 * does. The CDN checks the signature and the expiry, serves ranges, and records every request, so a test can
 * see that the registry's Authorization never reaches it. Manifests are served by the registry itself.
 */
export class RedirectingUpstream {
  readonly #registry: Server;
  readonly #cdn: Server;
  readonly #content = new Map<string, UpstreamContent>();
  readonly #tags = new Map<string, string>();
  readonly #key = 'cdn-signing-key';
  readonly registryRequests: SeenRequest[] = [];
  readonly cdnRequests: SeenRequest[] = [];
  /** The next this many blob GETs on the CDN send half the body, then drop the connection. */
  breakMidBody = 0;
  /** The next this many signed URLs are issued already expired. */
  issueExpired = 0;
  /** Redirects chained on the registry before the CDN URL (a registry that redirects to itself first). */
  extraHops = 0;
  /** The host the signed URLs name: a hostname that resolves to loopback must be refused by the guard. */
  cdnHost = '127.0.0.1';
  registryPort = 0;
  cdnPort = 0;

  constructor() {
    this.#registry = createServer((req, res) => this.#serveRegistry(req, res));
    this.#cdn = createServer((req, res) => this.#serveCdn(req, res));
  }

  /** The registry as containerd names it. */
  get host(): string {
    return `127.0.0.1:${this.registryPort}`;
  }

  /** A docker config.json body with the registry's credentials. */
  dockerConfig(): string {
    const auth = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    return JSON.stringify({ auths: { [this.host]: { auth } } });
  }

  add(content: UpstreamContent, tag?: string): void {
    this.#content.set(content.digest, content);
    if (tag !== undefined) this.#tags.set(tag, content.digest);
  }

  /** Authorized GETs of `digest` on the registry (each answered with a redirect), and GETs on the CDN. */
  blobGets(digest: string): { registry: number; cdn: number } {
    const hex = digest.slice('sha256:'.length);
    const gets = (seen: SeenRequest[]) => seen.filter((r) => r.method === 'GET' && r.url.includes(hex));
    return {
      registry: gets(this.registryRequests).filter(
        (r) => r.authorization !== undefined && !r.url.includes('hop='),
      ).length,
      cdn: gets(this.cdnRequests).length,
    };
  }

  async start(): Promise<void> {
    this.registryPort = await listen(this.#registry);
    this.cdnPort = await listen(this.#cdn);
  }

  async stop(): Promise<void> {
    await close(this.#registry);
    await close(this.#cdn);
  }

  #sign(path: string, expires: number): string {
    return createHmac('sha256', this.#key).update(`${path}\n${expires}`).digest('hex');
  }

  #serveRegistry(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://registry');
    this.registryRequests.push(seen(req));
    const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, {
        'www-authenticate': 'Basic realm="registry"',
        'content-type': 'application/json',
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const hop = Number(url.searchParams.get('hop') ?? '0');
    const match = /^\/v2\/(.+)\/(blobs|manifests)\/([^/]+)$/.exec(url.pathname);
    const reference = match?.[3] ?? '';
    const content = this.#content.get(this.#tags.get(reference) ?? reference);
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    if (match === null || content === undefined) return void res.writeHead(404).end('{}');
    const headers = {
      'docker-content-digest': content.digest,
      'content-type': content.mediaType,
      'content-length': String(content.bytes.length),
    };
    if (match[2] === 'manifests' || req.method === 'HEAD') {
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : content.bytes);
      return;
    }
    if (hop < this.extraHops) {
      // A relative Location, as some registries send.
      res.writeHead(302, { location: `${url.pathname}?hop=${hop + 1}` }).end();
      return;
    }
    const path = `/objects/${content.digest.slice('sha256:'.length)}`;
    let expires = Math.floor(Date.now() / 1000) + 600;
    if (this.issueExpired > 0) {
      this.issueExpired--;
      expires -= 1200;
    }
    const location = `http://${this.cdnHost}:${this.cdnPort}${path}?X-Expires=${expires}&X-Signature=${this.#sign(path, expires)}`;
    res.writeHead(307, { location, 'content-length': '0' }).end();
  }

  #serveCdn(req: IncomingMessage, res: ServerResponse): void {
    this.cdnRequests.push(seen(req));
    const url = new URL(req.url ?? '/', 'http://cdn');
    const expires = Number(url.searchParams.get('X-Expires'));
    const valid =
      url.searchParams.get('X-Signature') === this.#sign(url.pathname, expires) &&
      expires * 1000 > Date.now();
    const content = this.#content.get(`sha256:${url.pathname.slice('/objects/'.length)}`);
    if (!valid) return void res.writeHead(403).end('<Error><Code>AccessDenied</Code></Error>');
    if (content === undefined) return void res.writeHead(404).end();
    const size = content.bytes.length;
    const range = byteRange(req.headers.range, size);
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(end - start + 1),
      'accept-ranges': 'bytes',
    };
    if (range !== undefined) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range === undefined ? 200 : 206, headers);
    const body = content.bytes.subarray(start, end + 1);
    if (req.method === 'HEAD') return void res.end();
    if (this.breakMidBody > 0) {
      this.breakMidBody--;
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
      return;
    }
    res.end(body);
  }
}

function seen(req: IncomingMessage): SeenRequest {
  return {
    method: req.method ?? '',
    url: req.url ?? '',
    authorization: req.headers.authorization,
    range: req.headers.range,
  };
}
