import { createHash, type Hash } from 'node:crypto';
import type { Socket } from 'node:net';
import { LoopbackProxy } from './proxy.js';

/** One HTTP response as it crossed the wire. */
export interface TappedResponse {
  method: string;
  path: string;
  status: number;
  headers: Map<string, string>;
  /** Content-Length announced (-1 when none). */
  length: number;
  /** Body bytes that arrived before the response ended or the connection closed. */
  received: number;
  /** Every announced byte arrived. */
  complete: boolean;
  /** sha256 of the body bytes that arrived (`sha256:<hex>`). */
  sha256: string;
}

interface Pending {
  method: string;
  path: string;
}

/**
 * A TCP proxy that records every HTTP/1.1 response passing through it, hashing bodies as they stream (no
 * body is held in memory). Put it between a client (containerd) and a server (shoal) to check what was
 * really sent, including responses that were cut off.
 */
export class HttpTap extends LoopbackProxy {
  readonly responses: TappedResponse[] = [];

  protected wire(client: Socket, upstream: Socket): () => void {
    const requests: Pending[] = [];
    let requestHead = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      // Pull requests carry no body: every request is a head ending in an empty line.
      requestHead = Buffer.concat([requestHead, chunk]);
      for (let end = requestHead.indexOf('\r\n\r\n'); end !== -1; end = requestHead.indexOf('\r\n\r\n')) {
        const [method = '', path = ''] = requestHead.subarray(0, end).toString('latin1').split(' ');
        requests.push({ method, path });
        requestHead = requestHead.subarray(end + 4);
      }
    });
    const parser = new ResponseParser(requests, (response) => this.responses.push(response));
    upstream.on('data', (chunk: Buffer) => parser.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    return () => parser.close();
  }
}

class ResponseParser {
  readonly #requests: Pending[];
  readonly #emit: (response: TappedResponse) => void;
  #head = Buffer.alloc(0);
  #current: (Omit<TappedResponse, 'sha256' | 'complete'> & { hash: Hash }) | undefined;
  #closed = false;

  constructor(requests: Pending[], emit: (response: TappedResponse) => void) {
    this.#requests = requests;
    this.#emit = emit;
  }

  push(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      if (this.#current === undefined) {
        this.#head = Buffer.concat([this.#head, data]);
        const end = this.#head.indexOf('\r\n\r\n');
        if (end === -1) return;
        data = this.#head.subarray(end + 4);
        this.#begin(this.#head.subarray(0, end).toString('latin1'));
        this.#head = Buffer.alloc(0);
        continue;
      }
      const current = this.#current;
      const left = current.length < 0 ? data.length : current.length - current.received;
      const take = data.subarray(0, left);
      current.hash.update(take);
      current.received += take.length;
      data = data.subarray(take.length);
      if (current.length >= 0 && current.received === current.length) this.#finish(true);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#current !== undefined) this.#finish(this.#current.length < 0);
  }

  #begin(head: string): void {
    const [statusLine = '', ...lines] = head.split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const request = this.#requests.shift() ?? { method: '?', path: '?' };
    const status = Number(statusLine.split(' ')[1]);
    const bodiless = request.method === 'HEAD' || status === 204 || status === 304;
    const length = bodiless ? 0 : Number(headers.get('content-length') ?? -1);
    this.#current = { ...request, status, headers, length, received: 0, hash: createHash('sha256') };
    if (length === 0) this.#finish(true);
  }

  #finish(complete: boolean): void {
    const current = this.#current;
    if (current === undefined) return;
    this.#current = undefined;
    const { hash, ...response } = current;
    this.#emit({ ...response, complete, sha256: `sha256:${hash.digest('hex')}` });
  }
}
