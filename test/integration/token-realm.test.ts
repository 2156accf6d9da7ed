import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UpstreamRefusedError } from '../../src/main/errors.js';
import { UpstreamClient, type UpstreamTarget } from '../../src/main/pullthrough/upstream.js';
import { CredentialStore } from '../../src/main/pullthrough/upstream-auth.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/** A loopback HTTP server that records every request (with its body) and every connection. */
class Recorder {
  readonly requests: Array<{ method: string; url: string; authorization: string; body: string }> = [];
  connections = 0;
  port = 0;
  readonly #server: Server;

  constructor(
    readonly host: string,
    answer: (req: IncomingMessage, res: ServerResponse, body: string) => void,
  ) {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        this.requests.push({
          method: req.method ?? '',
          url: req.url ?? '',
          authorization: req.headers.authorization ?? '',
          body,
        });
        answer(req, res, body);
      });
    });
    this.#server.on('connection', (socket: Socket) => {
      this.connections++;
      socket.on('error', () => undefined);
    });
  }

  get origin(): string {
    return `http://${this.host}:${this.port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, this.host, resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

// A registry whose token realm is hostile, as an attacker who controls a mirrored registry would set it up:
// every realm request goes through the upstream guard at connect time, every redirect hop is checked, and a
// refresh token or a credential never leaves the realm's origin. In-process, on loopback; names resolve
// through an injected resolver, so a name can answer differently the second time it is asked.
describe('token realms: the guard holds at connect time and on every redirect', { timeout: 60_000 }, () => {
  let dir: string;
  let realmPath = '/token';
  let registry: Recorder;
  let realm: Recorder;
  /** A listener on a loopback address nobody named: nothing may ever reach it. */
  let trap: Recorder;
  /** Another origin on the registry's own (named) address: allowed to connect, never sent a secret. */
  let elsewhere: Recorder;
  let realmAnswer: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;

  before(async () => {
    dir = await shortTempDir('shoal-realm');
    registry = new Recorder('127.0.0.1', (req, res) => {
      if (req.headers.authorization === 'Bearer good') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
        return;
      }
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="${realm.origin}${realmPath}",service="registry"`,
        })
        .end();
    });
    realm = new Recorder('127.0.0.1', (req, res) => realmAnswer(req, res));
    trap = new Recorder('127.0.0.9', (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"stolen"}'),
    );
    elsewhere = new Recorder('127.0.0.1', (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"good"}'),
    );
    await Promise.all([registry.start(), realm.start(), trap.start(), elsewhere.start()]);
  });

  after(async () => {
    await Promise.all([registry?.stop(), realm?.stop(), trap?.stop(), elsewhere?.stop()]);
    await removeDir(dir);
  });

  const target = (): UpstreamTarget => ({
    registry: `127.0.0.1:${registry.port}`,
    repository: 'app',
    kind: 'manifests',
    reference: 'v1',
  });
  const client = (deps: ConstructorParameters<typeof UpstreamClient>[0] = {}) =>
    new UpstreamClient(deps, {
      mirroredRegistries: [target().registry],
      insecureRegistries: [target().registry],
      // 10 ms instead of 200 between retries only to keep the test short: a refusal is never retried, and
      // what is asserted (who was reached, and how often) does not depend on the wait.
      backoffMs: 10,
    });
  const reset = () => {
    for (const recorder of [registry, realm, trap, elsewhere]) {
      recorder.requests.length = 0;
      recorder.connections = 0;
    }
  };

  it('answers the registry’s challenge from an honest realm (the control case)', async () => {
    reset();
    realmAnswer = (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"good"}');
    const response = await client().request(target(), { method: 'GET' });
    assert.equal(response.status, 200);
    response.body.resume();
    assert.equal(realm.requests.length, 1);
  });

  it('does not follow a realm’s redirect to a refused address, so no token from there reaches the registry', async () => {
    for (const status of [302, 307]) {
      reset();
      realmAnswer = (_req, res) => res.writeHead(status, { location: `${trap.origin}/steal` }).end();
      await assert.rejects(client().request(target(), { method: 'GET' }), UpstreamRefusedError);
      assert.equal(trap.connections, 0, `${status}: the trap was reached`);
      assert.ok(
        registry.requests.every((request) => !request.authorization.includes('stolen')),
        'a token from the trap reached the registry',
      );
    }
  });

  it('never sends a refresh token, nor a credential, to another origin than the realm’s', async () => {
    const config = join(dir, 'identity.json');
    await writeFile(
      config,
      JSON.stringify({ auths: { [target().registry]: { identitytoken: 'refresh-secret' } } }),
    );
    const identity = await CredentialStore.load(config);
    for (const status of [307, 308]) {
      reset();
      realmAnswer = (_req, res) => res.writeHead(status, { location: `${elsewhere.origin}/token` }).end();
      await assert.rejects(client({ credentials: identity }).request(target(), { method: 'GET' }));
      assert.equal(realm.requests[0]?.method, 'POST');
      assert.match(realm.requests[0]?.body ?? '', /refresh_token=refresh-secret/);
      assert.deepEqual(elsewhere.requests, [], `${status}: the refresh token was re-sent elsewhere`);
    }
    // Basic credentials: the redirected GET goes on without them.
    const basicConfig = join(dir, 'basic.json');
    const auth = Buffer.from('alice:secret').toString('base64');
    await writeFile(basicConfig, JSON.stringify({ auths: { [target().registry]: { auth } } }));
    reset();
    realmAnswer = (_req, res) => res.writeHead(302, { location: `${elsewhere.origin}/token` }).end();
    const basic = await CredentialStore.load(basicConfig);
    const response = await client({ credentials: basic }).request(target(), { method: 'GET' });
    response.body.resume();
    assert.match(realm.requests[0]?.authorization ?? '', /^Basic /);
    assert.equal(elsewhere.requests.length, 1);
    assert.equal(elsewhere.requests[0]?.authorization, '', 'Basic credentials followed the redirect');
  });

  it('gives up on a realm that redirects to itself after 5 hops: at most 6 realm requests per request', async () => {
    reset();
    realmAnswer = (_req, res) => res.writeHead(307, { location: `${realm.origin}/token?again` }).end();
    await assert.rejects(client().request(target(), { method: 'GET' }), UpstreamRefusedError);
    assert.ok(realm.requests.length <= 6, `${realm.requests.length} realm requests`);
  });

  it('connects to the address it checked: a name that resolves to a refused address afterwards is not reached', async () => {
    reset();
    // The realm is named by a hostname. Asked the first time (the check), the resolver answers a public
    // address; asked again (to connect), the trap's loopback address, as a rebinding DNS server would.
    realmPath = '/token';
    const answers: string[][] = [['93.184.215.14'], [trap.host]];
    let asked = 0;
    const resolve = ((
      _name: string,
      _options: unknown,
      callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
    ) => {
      const next = answers[Math.min(asked++, answers.length - 1)] as string[];
      queueMicrotask(() =>
        callback(
          null,
          next.map((address) => ({ address, family: 4 })),
        ),
      );
    }) as unknown as NonNullable<ConstructorParameters<typeof UpstreamClient>[0]['resolve']>;
    const origin = realm.origin;
    const rebound = new Recorder('127.0.0.1', (_req, res) =>
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://realm.rebind.test:${trap.port}/token",service="registry"`,
        })
        .end(),
    );
    await rebound.start();
    try {
      const upstream = new UpstreamClient(
        { resolve },
        {
          mirroredRegistries: [`127.0.0.1:${rebound.port}`],
          insecureRegistries: [`127.0.0.1:${rebound.port}`],
          backoffMs: 10, // as above
        },
      );
      await assert.rejects(
        upstream.request(
          { registry: `127.0.0.1:${rebound.port}`, repository: 'app', kind: 'manifests', reference: 'v1' },
          { method: 'GET' },
        ),
        UpstreamRefusedError,
      );
      assert.ok(asked >= 2, `the name was resolved ${asked} time(s)`);
      assert.equal(trap.connections, 0, 'connected to the refused address the name turned into');
      assert.equal(realm.origin, origin);
    } finally {
      await rebound.stop();
    }
  });
});
