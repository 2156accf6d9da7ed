import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BlobUnknownError,
  ManifestUnknownError,
  UpstreamUnauthorizedError,
  UpstreamUnavailableError,
} from '../../src/main/errors.js';
import { UpstreamClient, type UpstreamTarget, USER_AGENT } from '../../src/main/pullthrough/upstream.js';
import { CredentialStore } from '../../src/main/pullthrough/upstream-auth.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { run } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';
import { TokenServer } from '../harness/token-server.js';

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

async function bodyDigest(response: { body: NodeJS.ReadableStream }): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of response.body) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function credentialsFile(dir: string, name: string, host: string, user: string, password: string) {
  const path = join(dir, `${name}.json`);
  const auth = Buffer.from(`${user}:${password}`).toString('base64');
  await writeFile(path, JSON.stringify({ auths: { [host]: { auth } } }));
  return CredentialStore.load(path);
}

// The upstream client against real CNCF distribution registries: open, htpasswd (Basic) and token (Bearer)
// auth, all serving the same image. Failures must never be cached as success.
describe('UpstreamClient against distribution', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let open: DistributionRegistry;
  let basic: DistributionRegistry;
  let bearer: DistributionRegistry;
  let tokens: TokenServer;
  const repository = 'upstream/app';
  const client = (registry: DistributionRegistry, credentials?: CredentialStore) =>
    new UpstreamClient(
      { credentials },
      { mirroredRegistries: [registry.host], insecureRegistries: [registry.host], backoffMs: 10 },
    );
  const manifest = (registry: DistributionRegistry, repo = repository): UpstreamTarget => ({
    registry: registry.host,
    repository: repo,
    kind: 'manifests',
    reference: image.tag,
  });

  before(async () => {
    dir = await shortTempDir('shoal-upstream');
    image = await smallImage('upstream');
    // Push to each registry's storage while it is open, then restart it with auth on.
    const storages = ['open', 'basic', 'bearer'].map((name) => join(dir, name));
    for (const storage of storages) {
      const seeding = new DistributionRegistry(storage);
      await seeding.start();
      await pushLayout(image.dir, image.tag, seeding.host, repository);
      await pushLayout(image.dir, image.tag, seeding.host, 'upstream/other');
      await seeding.stop();
    }
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, await run('htpasswd', ['-Bbn', 'alice', 'secret']));
    tokens = new TokenServer(dir, 'alice', 'secret');
    await tokens.start();
    open = new DistributionRegistry(storages[0] as string);
    basic = new DistributionRegistry(storages[1] as string, { auth: { kind: 'htpasswd', path: htpasswd } });
    bearer = new DistributionRegistry(storages[2] as string, {
      auth: {
        kind: 'token',
        realm: tokens.realm,
        service: tokens.service,
        issuer: tokens.issuer,
        rootCertBundle: tokens.certFile,
      },
    });
    await Promise.all([open.start(), basic.start(), bearer.start()]);
  });

  after(async () => {
    await Promise.all([open?.stop(), basic?.stop(), bearer?.stop(), tokens?.stop()]);
    await removeDir(dir);
  });

  it('pulls anonymously from an open registry: manifest by tag, blob by digest', async () => {
    const upstream = client(open);
    const head = await upstream.request(manifest(open), { method: 'HEAD', accept: MANIFEST_ACCEPT });
    assert.equal(head.status, 200);
    assert.equal(head.headers['docker-content-digest'], image.image.manifest.digest);
    head.body.resume();
    const layer = image.image.layers[0];
    assert.ok(layer);
    const blob = await upstream.request(
      { registry: open.host, repository, kind: 'blobs', reference: layer.digest },
      { method: 'GET' },
    );
    assert.equal(await bodyDigest(blob), layer.digest);
  });

  it('maps a missing manifest or blob to 404 errors, without retrying', async () => {
    const upstream = client(open);
    await assert.rejects(
      upstream.request(
        { ...manifest(open), reference: 'absent' },
        { method: 'HEAD', accept: MANIFEST_ACCEPT },
      ),
      ManifestUnknownError,
    );
    await assert.rejects(
      upstream.request(
        { registry: open.host, repository, kind: 'blobs', reference: `sha256:${'0'.repeat(64)}` },
        { method: 'HEAD' },
      ),
      BlobUnknownError,
    );
  });

  it('uses Basic credentials on an htpasswd registry, and refuses without or with bad ones', async () => {
    const good = await credentialsFile(dir, 'basic-good', basic.host, 'alice', 'secret');
    const response = await client(basic, good).request(manifest(basic), {
      method: 'HEAD',
      accept: MANIFEST_ACCEPT,
    });
    assert.equal(response.status, 200);
    response.body.resume();
    await assert.rejects(
      client(basic).request(manifest(basic), { method: 'HEAD', accept: MANIFEST_ACCEPT }),
      UpstreamUnauthorizedError,
    );
    const bad = client(basic, await credentialsFile(dir, 'basic-bad', basic.host, 'alice', 'wrong'));
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        bad.request(manifest(basic), { method: 'HEAD', accept: MANIFEST_ACCEPT }),
        UpstreamUnauthorizedError,
      );
    }
  });

  it('follows the Bearer token flow and reuses the token per scope', async () => {
    const credentials = await credentialsFile(dir, 'bearer-good', bearer.host, 'alice', 'secret');
    const upstream = client(bearer, credentials);
    const issued = tokens.issued;
    for (let i = 0; i < 3; i++) {
      const response = await upstream.request(manifest(bearer), { method: 'GET', accept: MANIFEST_ACCEPT });
      assert.equal(await bodyDigest(response), image.image.manifest.digest);
    }
    assert.equal(tokens.issued - issued, 1, 'one token for three requests in one scope');
    const other = await upstream.request(manifest(bearer, 'upstream/other'), {
      method: 'HEAD',
      accept: MANIFEST_ACCEPT,
    });
    other.body.resume();
    assert.equal(tokens.issued - issued, 2, 'another repository is another scope');
  });

  it('fetches a new token once the old one expires', async () => {
    tokens.expiresIn = 2;
    try {
      const upstream = client(
        bearer,
        await credentialsFile(dir, 'bearer-expiry', bearer.host, 'alice', 'secret'),
      );
      const issued = tokens.issued;
      const first = await upstream.request(manifest(bearer), { method: 'HEAD', accept: MANIFEST_ACCEPT });
      first.body.resume();
      await sleep(2200);
      const second = await upstream.request(manifest(bearer), { method: 'HEAD', accept: MANIFEST_ACCEPT });
      second.body.resume();
      assert.equal(second.status, 200);
      assert.equal(tokens.issued - issued, 2, 'the expired token was not reused');
    } finally {
      tokens.expiresIn = 300;
    }
  });

  it('gets a token anonymously when the token service allows it', async () => {
    tokens.anonymous = true;
    try {
      const response = await client(bearer).request(manifest(bearer), {
        method: 'HEAD',
        accept: MANIFEST_ACCEPT,
      });
      response.body.resume();
      assert.equal(response.status, 200);
    } finally {
      tokens.anonymous = false;
    }
  });

  it('answers bad credentials with 401-as-unauthorized every time: a refusal is never cached', async () => {
    const upstream = client(bearer, await credentialsFile(dir, 'bearer-bad', bearer.host, 'alice', 'wrong'));
    const refused = tokens.refused;
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        upstream.request(manifest(bearer), { method: 'HEAD', accept: MANIFEST_ACCEPT }),
        UpstreamUnauthorizedError,
      );
    }
    assert.equal(tokens.refused - refused, 2, 'the token service was asked again');
    assert.equal(upstream.tokensFetched, 0);
  });
});

describe('UpstreamClient retries', () => {
  let server: Server;
  let port: number;
  const answers: number[] = [];
  let requests = 0;
  let userAgent: string | undefined;
  const HOLD = -1;

  before(async () => {
    server = createServer((req, res) => {
      requests++;
      userAgent = req.headers['user-agent'];
      const status = answers.shift() ?? 200;
      if (status === HOLD) return; // never answers: a registry that hangs
      res.writeHead(status, status === 429 ? { 'retry-after': '0' } : {}).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const target = (): UpstreamTarget => ({
    registry: `127.0.0.1:${port}`,
    repository: 'app',
    kind: 'blobs',
    reference: `sha256:${'1'.repeat(64)}`,
  });
  const client = () =>
    new UpstreamClient(
      {},
      {
        mirroredRegistries: [`127.0.0.1:${port}`],
        insecureRegistries: [`127.0.0.1:${port}`],
        retries: 2,
        backoffMs: 5,
      },
    );

  it('retries 429 and 5xx before the first byte, then succeeds', async () => {
    answers.push(503, 429);
    requests = 0;
    const response = await client().request(target(), { method: 'HEAD' });
    response.body.resume();
    assert.equal(response.status, 200);
    assert.equal(requests, 3);
  });

  it('gives up after its retries with the upstream status in the detail', async () => {
    answers.push(502, 502, 502);
    requests = 0;
    await assert.rejects(client().request(target(), { method: 'HEAD' }), (err: unknown) => {
      assert.ok(err instanceof UpstreamUnavailableError);
      assert.deepEqual(err.detail, { upstreamStatus: 502 });
      assert.equal(err.status, 503);
      return true;
    });
    assert.equal(requests, 3);
  });

  // Regression: a passed deadline surfaced as a raw AbortError, which the registry answered 500, so
  // containerd went to the registry on its own and the blob was fetched twice.
  it('treats a registry that does not answer by the deadline as unavailable', async () => {
    answers.push(HOLD);
    await assert.rejects(
      client().request(target(), { method: 'HEAD', signal: AbortSignal.timeout(200) }),
      UpstreamUnavailableError,
    );
  });

  it('names itself, so a registry log tells shoal from containerd', async () => {
    const response = await client().request(target(), { method: 'HEAD' });
    response.body.resume();
    assert.equal(userAgent, USER_AGENT);
  });

  it('treats an unreachable registry as unavailable at once, without retrying a refused connection', async () => {
    // Default retries and backoff: a refused connection must not cost the 200 + 400 ms of two retries.
    const upstream = new UpstreamClient(
      {},
      { mirroredRegistries: ['127.0.0.1:1'], insecureRegistries: ['127.0.0.1:1'] },
    );
    const started = Date.now();
    await assert.rejects(
      upstream.request({ ...target(), registry: '127.0.0.1:1' }, { method: 'HEAD' }),
      UpstreamUnavailableError,
    );
    // Generous against a loaded machine; a retry at the default backoff alone would add 600 ms.
    assert.ok(Date.now() - started < 500, `gave up after ${Date.now() - started} ms`);
  });
});
