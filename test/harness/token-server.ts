import { randomUUID, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { selfSignedCert } from './tls.js';

/**
 * A Docker registry token service (the `WWW-Authenticate: Bearer realm=…` flow) for a distribution registry
 * set up with `auth: token`. It signs ES256 JWTs with a throwaway key whose self-signed certificate the
 * registry trusts, and grants pull on any repository to one user (or to anyone, when `anonymous`).
 */
export class TokenServer {
  readonly dir: string;
  readonly service = 'shoal-test-registry';
  readonly issuer = 'shoal-test-issuer';
  readonly user: string;
  readonly password: string;
  /** Seconds a token lives (`expires_in`); tests lower it to see refreshes. */
  expiresIn = 300;
  anonymous = false;
  /** Tokens issued, and requests refused for bad credentials. */
  issued = 0;
  refused = 0;
  port = 0;
  #server: Server | undefined;
  #key = '';
  #certDer = '';

  constructor(dir: string, user: string, password: string) {
    this.dir = dir;
    this.user = user;
    this.password = password;
  }

  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  get certFile(): string {
    return join(this.dir, 'token.crt');
  }

  async start(): Promise<void> {
    const { key: keyFile } = await selfSignedCert(this.dir, { name: 'token', cn: 'shoal-test-token' });
    this.#key = await readFile(keyFile, 'utf8');
    const pem = await readFile(this.certFile, 'utf8');
    this.#certDer = pem.replace(/-----[A-Z ]+-----|\s/g, '');
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://token');
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const [user, password] = basic === undefined ? [] : Buffer.from(basic, 'base64').toString().split(':');
      const authenticated = user === this.user && password === this.password;
      if (!authenticated && !(this.anonymous && basic === undefined)) {
        this.refused++;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      this.issued++;
      const token = this.#token(url.searchParams.get('scope') ?? '', authenticated ? this.user : '');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token, expires_in: this.expiresIn, issued_at: new Date().toISOString() }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  #token(scope: string, subject: string): string {
    const now = Math.floor(Date.now() / 1000);
    // scope = repository:<name>:pull[,push]; grant pull only.
    const [, name = '', actions = ''] = scope.split(':');
    const access =
      scope === ''
        ? []
        : [{ type: 'repository', name, actions: actions.split(',').filter((a) => a === 'pull') }];
    const header = { typ: 'JWT', alg: 'ES256', x5c: [this.#certDer] };
    const claims = {
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + this.expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const signing = `${encode(header)}.${encode(claims)}`;
    const signature = sign('sha256', Buffer.from(signing), { key: this.#key, dsaEncoding: 'ieee-p1363' });
    return `${signing}.${signature.toString('base64url')}`;
  }
}
