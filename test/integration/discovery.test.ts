import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { NameUnknownError } from '../../src/main/errors.js';
import type { Digest } from '../../src/main/oci/digest.js';
import { UpstreamClient } from '../../src/main/pullthrough/upstream.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import { RegistryDiscovery } from '../../src/main/tags/discovery.js';
import { TagBook } from '../../src/main/tags/tag-book.js';

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;

// Tag lists and referrers through the real upstream client, against a registry that pages its tag list
// with Link headers as Docker Hub and GHCR do, and one that is down.
describe('RegistryDiscovery', () => {
  let server: Server;
  let host: string;
  let down = false;
  let listCalls = 0;
  let heldDigest: Digest;
  const book = new TagBook({});
  const store = new MemoryStore();

  before(async () => {
    server = createServer((req, res) => {
      if (down) return void res.writeHead(503).end();
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/v2/paged/app/tags/list') {
        listCalls++;
        const last = url.searchParams.get('last');
        const page = last === null ? ['v1', 'v2'] : last === 'v2' ? ['v3', 'v4'] : ['v5'];
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (page[0] !== 'v5') headers.link = `</v2/paged/app/tags/list?n=2&last=${page[1]}>; rel="next"`;
        return void res.writeHead(200, headers).end(JSON.stringify({ name: 'paged/app', tags: page }));
      }
      if (url.pathname === `/v2/paged/app/referrers/${DIGEST}`) {
        const manifests = [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: DIGEST,
            size: 1,
            artifactType: 'sig',
          },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: DIGEST,
            size: 1,
            artifactType: 'sbom',
          },
        ];
        return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.index.v1+json',
            manifests,
          }),
        );
      }
      res.writeHead(404).end('{"errors":[{"code":"NAME_UNKNOWN","message":"x"}]}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {},
        layers: [],
      }),
    );
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}` as Digest;
    await store.ingest(digest, [manifest]);
    await store.tag(host, 'paged/app', 'held', digest);
    heldDigest = digest;
    book.confirm(`${host}/paged/app:booked`, digest, Date.now());
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const discovery = () =>
    new RegistryDiscovery({
      store,
      book,
      upstream: new UpstreamClient(
        {},
        { mirroredRegistries: [host], insecureRegistries: [host], retries: 0 },
      ),
    });

  it('follows the registry’s Link pages for the whole tag list', async () => {
    assert.deepEqual(await discovery().tags(host, 'paged/app'), {
      tags: ['v1', 'v2', 'v3', 'v4', 'v5'],
      source: 'upstream',
    });
  });

  it('passes the registry’s “no such repository” through', async () => {
    await assert.rejects(discovery().tags(host, 'missing/app'), NameUnknownError);
  });

  it('lists what the node holds and its tag book confirmed when the registry is down', async () => {
    down = true;
    try {
      const local = discovery();
      assert.deepEqual((await local.tags(host, 'paged/app')).tags.sort(), ['booked', 'held']);
      // The store's listing is kept until the store changes.
      await store.tag(host, 'paged/app', 'later', heldDigest);
      assert.deepEqual((await local.tags(host, 'paged/app')).tags.sort(), ['booked', 'held', 'later']);
      const referrers = await discovery().referrers(host, 'paged/app', DIGEST, undefined);
      assert.deepEqual(JSON.parse(referrers.body.toString()).manifests, []);
    } finally {
      down = false;
    }
  });

  it('answers referrers from the registry, filtered by artifactType when asked', async () => {
    const all = await discovery().referrers(host, 'paged/app', DIGEST, undefined);
    assert.equal(JSON.parse(all.body.toString()).manifests.length, 2);
    assert.equal(all.filtered, false);
    const sboms = await discovery().referrers(host, 'paged/app', DIGEST, 'sbom');
    assert.deepEqual(
      JSON.parse(sboms.body.toString()).manifests.map(
        (entry: { artifactType: string }) => entry.artifactType,
      ),
      ['sbom'],
    );
    assert.equal(sboms.filtered, true);
  });

  it('asks the registry once for concurrent lists, reuses the answer for 30 s, and never keeps a failure', async () => {
    let now = 1_000_000;
    const shared = new RegistryDiscovery({
      store,
      book,
      now: () => now,
      upstream: new UpstreamClient(
        {},
        { mirroredRegistries: [host], insecureRegistries: [host], retries: 0 },
      ),
    });
    const before = listCalls;
    await Promise.all(Array.from({ length: 5 }, () => shared.tags(host, 'paged/app')));
    assert.equal(listCalls - before, 3, 'one walk of the three pages for five requests');
    now += 29_000;
    await shared.tags(host, 'paged/app');
    assert.equal(listCalls - before, 3, 'reused within 30 s');
    now += 2_000;
    down = true;
    try {
      const known = await shared.tags(host, 'paged/app');
      assert.deepEqual([known.tags.sort(), known.source], [['booked', 'held', 'later'], 'local']);
    } finally {
      down = false;
    }
    assert.deepEqual(
      await shared.tags(host, 'paged/app'),
      { tags: ['v1', 'v2', 'v3', 'v4', 'v5'], source: 'upstream' },
      'the failure was not kept',
    );
  });
});
