import { UpstreamRefusedError, UpstreamUnauthorizedError, UpstreamUnavailableError } from '../errors.js';
import { followRedirects } from './redirects.js';
import type { UpstreamResponse } from './upstream.js';
import { basicHeader, type Challenge, type CredentialStore } from './upstream-auth.js';
import type { UpstreamGuard } from './upstream-guard.js';
import type { SendOptions, UpstreamSender } from './upstream-send.js';

interface CachedToken {
  token: string;
  expiresAt: number;
}

const DEFAULT_TOKEN_SECONDS = 60;
/** Largest token answer read: a JWT is a few KiB. */
const MAX_TOKEN_BODY_BYTES = 64 << 10;

/** Reads a realm's JSON answer, at most MAX_TOKEN_BODY_BYTES, by `deadlineAt` (epoch ms). */
async function readJson(response: UpstreamResponse, service: string, deadlineAt: number): Promise<unknown> {
  const body = response.body;
  const timer = setTimeout(
    () => body.destroy(new Error('no whole answer within --upstream-timeout')),
    Math.max(1, deadlineAt - Date.now()),
  );
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > MAX_TOKEN_BODY_BYTES) throw new Error(`answer over ${MAX_TOKEN_BODY_BYTES} bytes`);
      chunks.push(chunk as Buffer);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (cause) {
    body.destroy();
    throw new UpstreamUnavailableError(`${service} sent no readable token`, { cause });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What answers a registry's `WWW-Authenticate` challenge: Basic credentials from a docker config, or a
 * Bearer token from the registry's realm, cached per registry and scope until shortly before it expires.
 * It remembers each registry's last challenge, so the next request can answer up front.
 */
export class UpstreamTokens {
  readonly #credentials: CredentialStore | undefined;
  readonly #guard: UpstreamGuard;
  readonly #send: UpstreamSender['send'];
  readonly #timeoutMs: number;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #challenges = new Map<string, Challenge>();
  /** Tokens fetched so far (for tests of the cache). */
  fetched = 0;

  constructor(
    deps: { credentials: CredentialStore | undefined; guard: UpstreamGuard; sender: UpstreamSender },
    init: { timeoutMs: number },
  ) {
    this.#credentials = deps.credentials;
    this.#guard = deps.guard;
    this.#send = deps.sender.send.bind(deps.sender);
    this.#timeoutMs = init.timeoutMs;
  }

  /** The challenge `registry` sent last, if any. */
  challengeOf(registry: string): Challenge | undefined {
    return this.#challenges.get(registry);
  }

  learn(registry: string, challenge: Challenge): void {
    this.#challenges.set(registry, challenge);
  }

  /** The Authorization header for `challenge`, or undefined when there is nothing to answer with. */
  async answer(
    registry: string,
    challenge: Challenge,
    scope: string,
    refresh: boolean,
  ): Promise<string | undefined> {
    const credential = this.#credentials?.get(registry);
    if (challenge.scheme === 'basic') {
      return credential?.kind === 'basic' ? basicHeader(credential) : undefined;
    }
    if (credential?.kind === 'registry-token') return `Bearer ${credential.token}`;
    const key = `${registry}\n${scope}`;
    const cached = this.#tokens.get(key);
    if (!refresh && cached !== undefined && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    this.#tokens.delete(key);
    const token = await this.#fetch(registry, challenge, scope);
    this.#tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  /**
   * Asks the realm for a token; a refusal throws UpstreamUnauthorized and nothing is cached. The realm is
   * asked like the registry: through the guard at connect time, every redirect hop checked, and neither the
   * refresh token (a POST body) nor Basic credentials ever sent to another origin than the realm's.
   */
  async #fetch(
    registry: string,
    challenge: Extract<Challenge, { scheme: 'bearer' }>,
    scope: string,
  ): Promise<CachedToken> {
    const credential = this.#credentials?.get(registry);
    const realm = new URL(challenge.realm);
    // The realm is the registry's choice of host: never one on the node's own networks.
    await this.#guard.checkUrl(realm);
    const form = new URLSearchParams({ scope });
    if (challenge.service !== undefined) form.set('service', challenge.service);
    const deadlineAt = Date.now() + this.#timeoutMs;
    let opts: SendOptions;
    let authorization: string | undefined;
    if (credential?.kind === 'identity-token') {
      // OAuth2: trade the refresh token for an access token.
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', credential.token);
      form.set('client_id', 'shoal');
      opts = { method: 'POST', form, deadlineAt };
    } else {
      for (const [name, value] of form) realm.searchParams.set(name, value);
      opts = { method: 'GET', deadlineAt };
      if (credential?.kind === 'basic') authorization = basicHeader(credential);
    }
    const service = `token service of ${registry}`;
    let response: UpstreamResponse;
    try {
      const first = await this.#send(realm.href, opts, authorization);
      ({ response } = await followRedirects(service, realm, first, {
        check: (next) => this.#guard.checkUrl(next),
        ask: async (next) => {
          if (next.origin === realm.origin) return this.#send(next.href, opts, authorization);
          if (opts.form !== undefined)
            throw new UpstreamRefusedError(`${service} redirected a refresh token to another origin`);
          return this.#send(next.href, opts, undefined);
        },
      }));
    } catch (cause) {
      if (cause instanceof UpstreamRefusedError) throw cause;
      throw new UpstreamUnavailableError(`${service} did not answer`, { cause });
    }
    if (response.status === 401 || response.status === 403) {
      response.body.destroy();
      throw new UpstreamUnauthorizedError(
        `token service of ${registry} refused the credentials (${response.status})`,
        {
          detail: { upstreamStatus: response.status },
        },
      );
    }
    if (response.status < 200 || response.status > 299) {
      response.body.destroy();
      throw new UpstreamUnavailableError(`token service of ${registry} answered ${response.status}`, {
        detail: { upstreamStatus: response.status },
      });
    }
    const body = (await readJson(response, service, deadlineAt)) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
      issued_at?: string;
    };
    const token = body.token ?? body.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new UpstreamUnavailableError(`token service of ${registry} sent no token`);
    }
    this.fetched++;
    const lifetime =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    const issued =
      body.issued_at === undefined
        ? Date.now()
        : Math.min(Date.now(), Date.parse(body.issued_at) || Date.now());
    // Renew a little early, so a token never expires between the cache and the registry.
    return { token, expiresAt: issued + lifetime * 1000 * 0.9 };
  }
}
