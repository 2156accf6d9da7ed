import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { requestPeer } from '../../src/main/mirror/peer-client.js';
import { parseDigest } from '../../src/main/oci/digest.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import { startRegistry } from '../harness/http.js';

describe('peer client against a real registry server', () => {
  const bytes = Buffer.alloc(4096, 7);
  const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  let registry: Awaited<ReturnType<typeof startRegistry>>;

  before(async () => {
    const store = new MemoryStore();
    await store.ingest(digest, [bytes]);
    registry = await startRegistry(store);
  });
  after(() => registry?.stop());

  // Regression: a HEAD's empty body was left paused, so its keep-alive socket never went back to the
  // agent; after 64 HEADs every request to that peer queued until the server's idle timeout freed one.
  it('answers 200 HEADs in a row, each within a second, and GETs after them', async () => {
    for (let i = 0; i < 200; i++) {
      const response = await requestPeer(registry.url, `/v2/shoal/peer/blobs/${digest}`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
        timeoutMs: 1000,
      });
      assert.equal(response.headers['content-length'], String(bytes.length));
    }
    const response = await requestPeer(registry.url, `/v2/shoal/peer/blobs/${digest}`, {
      method: 'GET',
      signal: AbortSignal.timeout(5000),
      timeoutMs: 1000,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).length, bytes.length);
  });
});
