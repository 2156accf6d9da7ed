import { UpstreamUnauthorizedError, UpstreamUnavailableError } from '../errors.js';
import { basicHeader, type Challenge, type CredentialStore } from './upstream-auth.js';
import type { UpstreamGuard } from './upstream-guard.js';

interface CachedToken {
  token: string;
  expiresAt: number;
}

const DEFAULT_TOKEN_SECONDS = 60;

/**
 * What answers a registry's `WWW-Authenticate` challenge: Basic credentials from a docker config, or a
 * Bearer token from the registry's realm, cached per registry and scope until shortly before it expires.
 * It remembers each registry's last challenge, so the next request can answer up front.
 */
export class UpstreamTokens {
  readonly #credentials: CredentialStore | undefined;
  readonly #guard: UpstreamGuard;
  readonly #timeoutMs: number;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #challenges = new Map<string, Challenge>();
  /** Tokens fetched so far (for tests of the cache). */
  fetched = 0;

  constructor(
    deps: { credentials: CredentialStore | undefined; guard: UpstreamGuard },
    init: { timeoutMs: number },
  ) {
    this.#credentials = deps.credentials;
    this.#guard = deps.guard;
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

  /** Asks the realm for a token; a refusal throws UpstreamUnauthorized and nothing is cached. */
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
    let response: Response;
    try {
      if (credential?.kind === 'identity-token') {
        // OAuth2: trade the refresh token for an access token.
        form.set('grant_type', 'refresh_token');
        form.set('refresh_token', credential.token);
        form.set('client_id', 'shoal');
        response = await fetch(realm, {
          method: 'POST',
          body: form,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } else {
        for (const [name, value] of form) realm.searchParams.set(name, value);
        const headers: Record<string, string> = {};
        if (credential?.kind === 'basic') headers.authorization = basicHeader(credential);
        response = await fetch(realm, { headers, signal: AbortSignal.timeout(this.#timeoutMs) });
      }
    } catch (cause) {
      throw new UpstreamUnavailableError(`token service of ${registry} did not answer`, { cause });
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new UpstreamUnauthorizedError(
        `token service of ${registry} refused the credentials (${response.status})`,
        {
          detail: { upstreamStatus: response.status },
        },
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new UpstreamUnavailableError(`token service of ${registry} answered ${response.status}`, {
        detail: { upstreamStatus: response.status },
      });
    }
    const body = (await response.json()) as {
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
