import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface Download {
  status: number;
  length: number;
  sha256: string;
  /** The whole body arrived (not cut). */
  complete: boolean;
  ms: number;
}

/**
 * GETs `url` and reads the body no faster than `bytesPerSecond` (undefined: as fast as it comes). A slow reader in the real sense:
 * the socket is paused between reads, so the kernel buffers fill and the server sees backpressure.
 */
export function pacedDownload(
  url: string,
  opts: {
    bytesPerSecond?: number;
    headers?: Record<string, string>;
    /**
     * Longest the reader pauses at once. Without it, a reader that finds a large backlog in its socket's
     * receive buffer (which the kernel grows as it sees fit) drains it at once and then pauses for backlog ÷
     * rate: seconds in which it takes nothing.
     */
    maxPauseMs?: number;
  } = {},
): { done: Promise<Download>; received: () => number; abort: () => void } {
  let length = 0;
  let current: ReturnType<typeof request> | undefined;
  const started = performance.now();
  const done = new Promise<Download>((resolve, reject) => {
    {
      const req = request(url, { headers: opts.headers ?? {} }, (res) => {
        const hash = createHash('sha256');
        const finish = (complete: boolean): void =>
          resolve({
            status: res.statusCode ?? 0,
            length,
            sha256: complete ? `sha256:${hash.digest('hex')}` : '',
            complete,
            ms: performance.now() - started,
          });
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          length += chunk.length;
          if (opts.bytesPerSecond === undefined) return;
          const due = (length / opts.bytesPerSecond) * 1000 - (performance.now() - started);
          if (due > 0) {
            res.pause();
            setTimeout(() => res.resume(), Math.min(due, opts.maxPauseMs ?? Number.POSITIVE_INFINITY));
          }
        });
        res.on('end', () => finish(res.complete));
        res.on('error', () => finish(false));
        res.on('aborted', () => finish(false));
      });
      req.on('error', reject);
      req.end();
      current = req;
    }
  });
  return { done, received: () => length, abort: () => current?.destroy() };
}

/** Sends `GET path` on a raw connection and never reads a byte of the answer. */
export function nonReadingRequest(host: string, port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => {
      socket.pause();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

/** Whether a TCP connect to host:port is refused (nothing listens). */
export function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
