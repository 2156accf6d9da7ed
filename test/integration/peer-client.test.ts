import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseDigest } from '../../src/main/oci/digest.js';
import { requestPeer } from '../../src/main/peer/peer-client.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import { memberPair, startRegistry } from '../harness/http.js';

describe('peer client against a real registry server', () => {
  const bytes = Buffer.alloc(4096, 7);
  const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let members: Awaited<ReturnType<typeof memberPair>>;
  const path = `/v2/shoal/peer/blobs/${digest}`;

  before(async () => {
    const store = new MemoryStore();
    await store.ingest(digest, [bytes]);
    members = await memberPair();
    registry = await startRegistry(store, {}, {}, store, members.server);
  });
  after(() => registry?.stop());

  // Regression: a HEAD's empty body was left paused, so its keep-alive socket never went back to the
  // agent; after 64 HEADs every request to that peer queued until the server's idle timeout freed one.
  it('answers 200 HEADs in a row, each within a second, and GETs after them', async () => {
    for (let i = 0; i < 200; i++) {
      const response = await requestPeer(registry.url, path, {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
        timeoutMs: 1000,
        auth: await members.headers('HEAD', path),
      });
      assert.equal(response.headers['content-length'], String(bytes.length));
    }
    const response = await requestPeer(registry.url, path, {
      method: 'GET',
      signal: AbortSignal.timeout(5000),
      timeoutMs: 1000,
      auth: await members.headers('GET', path),
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).length, bytes.length);
  });
});

// Regression: a peer closed an idle keep-alive connection just as a request reused it; the request failed
// with ECONNRESET, and an owner asked that way was passed over, so the blob left upstream twice.
describe('peer client and a connection the peer closes as it is reused', () => {
  let server: Server;
  let url: string;
  let connections = 0;
  const sockets = new Set<Socket>();

  before(async () => {
    // Answers the first request (a HEAD: headers only) on each connection and keeps it open; resets on any
    // later one, as a peer that closed the idle connection just as it was reused.
    server = createServer((socket) => {
      connections++;
      sockets.add(socket);
      let requests = 0;
      socket.on('data', (chunk) => {
        if (!chunk.toString('latin1').includes('\r\n\r\n')) return;
        if (++requests > 1) return socket.resetAndDestroy();
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  });

  it('asks again once on a connection of its own', async () => {
    for (let i = 0; i < 3; i++) {
      const response = await requestPeer(url, '/v2/shoal/peer/blobs/x', {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
        timeoutMs: 1000,
        auth: {},
      });
      assert.equal(response.status, 200);
    }
    assert.ok(connections >= 2, `a fresh connection was opened (${connections})`);
  });
});
