import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { getPeerBody, type PeerBody } from '../../../src/main/peer/peer-body.js';

/** Bytes no two bodies share: body `seed` of `size` bytes (a xorshift stream). */
function content(seed: number, size: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}

/**
 * A raw HTTP server: GET /<seed>/<size> answers that body with its length, then closes. With /split at the
 * end, the body follows the head a moment later, so it is read into the read buffer, not with the head.
 */
async function bodyServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((socket) => {
    socket.once('data', (head) => {
      const [seed = '0', size = '0', split] =
        head.toString('latin1').split(' ')[1]?.slice(1).split('/') ?? [];
      const body = content(Number(seed), Number(size));
      const status = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      if (split === undefined) socket.end(Buffer.concat([status, body]));
      else socket.write(status, () => setTimeout(() => socket.end(body), 20));
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, url: `http://127.0.0.1:${address.port}` };
}

const options = () => ({ signal: new AbortController().signal, timeoutMs: 5000, auth: {} });

/** Reads a whole body in pieces of `piece` bytes, waiting a turn between pieces. */
async function readAll(body: PeerBody, size: number, piece: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  let filled = 0;
  while (filled < size) {
    const before = filled;
    filled = body.drain(out, filled, Math.min(size, filled + piece));
    if (filled === before) {
      assert.ok(!body.finished, `the body ended at ${filled} of ${size} bytes`);
      await body.wait(5000);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

describe('peer bodies', () => {
  let server: Server;
  let url: string;
  before(async () => {
    ({ server, url } = await bodyServer());
  });
  after(() => server.close());

  it('keep every body whole while connections end and their read buffers go to the next ones', async () => {
    const MiB = 1 << 20;
    // Bodies larger than a read buffer, read concurrently and slowly, so buffers are recycled while other
    // connections still read: a buffer handed on too early would mix two bodies.
    for (let round = 0; round < 3; round++) {
      const sizes = [3 * MiB, 700_000, 1, 0, 2 * MiB + 17, 512 << 10];
      const results = await Promise.all(
        sizes.map(async (size, i) => {
          const seed = round * 100 + i;
          const { body } = await getPeerBody(url, `/${seed}/${size}`, options());
          return { seed, got: await readAll(body, size, 100_000 + i * 7919) };
        }),
      );
      for (const [i, { seed, got }] of results.entries()) {
        assert.ok(got.equals(content(seed, sizes[i] ?? 0)), `body ${seed} arrived intact`);
      }
    }
  });

  it('keep the last bytes of a finished body unread while other connections come and go', async () => {
    // A small body comes in one read after the head: the peer closes, and the bytes wait in the read
    // buffer for as long as nobody reads them.
    const size = 1000;
    const { body: held } = await getPeerBody(url, `/900/${size}/split`, options());
    for (let waited = 0; held.available < size; waited++) {
      assert.ok(waited < 200, `the body came in ${held.available} of ${size} bytes`);
      await sleep(5);
    }
    await sleep(20); // the socket's close handler has run
    for (let i = 0; i < 20; i++) {
      const { body } = await getPeerBody(url, `/${1000 + i}/${size}`, options());
      assert.ok((await readAll(body, size, size)).equals(content(1000 + i, size)));
    }
    // Abandoned bodies give their buffers back too, without harm to the one still held.
    for (let i = 0; i < 5; i++) (await getPeerBody(url, `/${2000 + i}/${4 << 20}`, options())).body.destroy();
    assert.ok((await readAll(held, size, size)).equals(content(900, size)));
  });
});
