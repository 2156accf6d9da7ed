import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BlobUnknownError,
  ManifestUnknownError,
  NameUnknownError,
  UpstreamRefusedError,
  UpstreamUnauthorizedError,
  UpstreamUnavailableError,
} from '../errors.js';
import type { CounterLike } from '../metrics/metrics.js';
import { followRedirects } from './redirects.js';
import { type CredentialStore, parseChallenge } from './upstream-auth.js';
import { UpstreamGuard, type UpstreamGuardInit } from './upstream-guard.js';
import { type SendOptions, UpstreamSender } from './upstream-send.js';
import { UpstreamTokens } from './upstream-token.js';

export { USER_AGENT } from './upstream-send.js';

export interface UpstreamClientInit {
  /** The only registries ever contacted, as containerd names them (`--mirrored-registries`). */
  mirroredRegistries: readonly string[];
  /** Of those, hosts that may resolve to loopback, link-local or private addresses (`--upstream-private-hosts`). */
  privateHosts?: readonly string[];
  /** Registry hosts reached over plain http; every other one over https (`--insecure-registries`). */
  insecureRegistries?: readonly string[];
  /** Longest wait for an upstream's headers, or for a token, in ms; default 10 000. */
  timeoutMs?: number;
  /** Retries after a 429, a 5xx or a failed connection, before the first byte only; default 2. */
  retries?: number;
  /** First retry delay in ms, doubled each time (a Retry-After is honoured up to 5 s); default 200. */
  backoffMs?: number;
}

/** What to ask an upstream registry for. */
export interface UpstreamTarget {
  /** The registry as containerd names it (`ns`): `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  repository: string;
  kind: 'manifests' | 'blobs' | 'tags' | 'referrers';
  /** A tag or a digest; `list` for tags. */
  reference: string;
  /** A query string without `?` (`n=100&last=v1`, `artifactType=…`). */
  query?: string;
}

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Paused body: the caller reads it (or destroys it). */
  body: IncomingMessage;
}

/** Connection errors that a retry within a second will not cure. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EREFUSEDADDRESS']);
const RETRY_AFTER_CAP_MS = 5000;

/** Where a registry really lives: `docker.io` is served from `registry-1.docker.io`. */
export function upstreamOrigin(registry: string, insecure: ReadonlySet<string>): string {
  const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
  return `${insecure.has(registry) ? 'http' : 'https'}://${host}`;
}

/**
 * Fetches manifests and blobs from the registries shoal mirrors, as containerd would: anonymously first,
 * then through the registry's `WWW-Authenticate` challenge, a Bearer token (cached per registry and scope
 * until shortly before it expires) or Basic credentials, from a docker config. Credentials go to the
 * registry and its token realm only: never to peers, never into logs.
 */
export class UpstreamClient {
  readonly #insecure: ReadonlySet<string>;
  readonly #guard: UpstreamGuard;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #tokens: UpstreamTokens;
  readonly #sender: UpstreamSender;
  readonly #requests: CounterLike<'registry' | 'status'> | undefined;

  constructor(
    deps: {
      credentials?: CredentialStore | undefined;
      /** Each request, by registry and the status it ended with (`error`: no answer, `refused`: not allowed). */
      requests?: CounterLike<'registry' | 'status'>;
      /** Resolves names for every connection (default: the system's); what it answers passes the guard. */
      resolve?: UpstreamGuardInit['resolve'];
    },
    init: UpstreamClientInit,
  ) {
    this.#requests = deps.requests;
    this.#guard = new UpstreamGuard({
      registries: init.mirroredRegistries,
      privateHosts: init.privateHosts ?? [],
      ...(deps.resolve === undefined ? {} : { resolve: deps.resolve }),
    });
    this.#insecure = new Set(init.insecureRegistries ?? []);
    this.#timeoutMs = init.timeoutMs ?? 10_000;
    this.#retries = init.retries ?? 2;
    this.#backoffMs = init.backoffMs ?? 200;
    this.#sender = new UpstreamSender(this.#guard.lookup, this.#timeoutMs);
    this.#tokens = new UpstreamTokens(
      { credentials: deps.credentials, guard: this.#guard, sender: this.#sender },
      { timeoutMs: this.#timeoutMs },
    );
  }

  /** Tokens fetched so far (for tests of the cache). */
  get tokensFetched(): number {
    return this.#tokens.fetched;
  }

  /**
   * Resolves at the headers of a 2xx answer. 404 becomes BlobUnknown/ManifestUnknown; 401/403 after the
   * auth flow, UpstreamUnauthorized; 429, 5xx and failed connections are retried with backoff, then
   * become UpstreamUnavailable with the upstream status in `detail`.
   */
  async request(
    target: UpstreamTarget,
    opts: { method: 'GET' | 'HEAD'; accept?: string; range?: string; signal?: AbortSignal | undefined },
  ): Promise<UpstreamResponse> {
    const outcome = { status: 'error' };
    try {
      return await this.#request(target, opts, outcome);
    } finally {
      // A registry the guard refused is not one of the mirrored set: never a label of its own.
      const registry = outcome.status === 'refused' ? 'other' : target.registry;
      this.#requests?.inc({ registry, status: outcome.status });
    }
  }

  /** `request`, with the last status the registry answered written into `outcome` as it goes. */
  async #request(
    target: UpstreamTarget,
    opts: { method: 'GET' | 'HEAD'; accept?: string; range?: string; signal?: AbortSignal | undefined },
    outcome: { status: string },
  ): Promise<UpstreamResponse> {
    outcome.status = 'refused';
    this.#guard.check(target.registry);
    outcome.status = 'error';
    const origin = upstreamOrigin(target.registry, this.#insecure);
    const query = target.query === undefined || target.query === '' ? '' : `?${target.query}`;
    const url = `${origin}/v2/${target.repository}/${target.kind}/${target.reference}${query}`;
    const scope = `repository:${target.repository}:pull`;
    let lastStatus: number | undefined;
    let lastError: unknown;
    // One bound for the headers, whatever it takes to get them: retries, a token, redirects.
    const deadlineAt = Date.now() + this.#timeoutMs;
    const sending: SendOptions = { ...opts, deadlineAt };
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (attempt > 0 && Date.now() >= deadlineAt) {
        lastError ??= new Error(`no answer within --upstream-timeout (${this.#timeoutMs} ms)`);
        break;
      }
      let response: UpstreamResponse;
      let foreign: boolean;
      try {
        ({ response, foreign } = await this.#followed(target.registry, url, scope, sending));
      } catch (err) {
        if (err instanceof UpstreamUnauthorizedError || err instanceof UpstreamRefusedError) throw err;
        // The caller's deadline passed: a coded error like any other unavailability, never a raw abort
        // (which the registry would answer 500, sending containerd to upstream on its own).
        if (opts.signal?.aborted === true) {
          throw new UpstreamUnavailableError(`${target.registry} did not answer in time`, { cause: err });
        }
        lastError = err;
        // Nothing listens there, or the name does not resolve: asking again in 200 ms changes nothing, and
        // the caller has the tag book and containerd has the registry to fall back on, at once.
        if (UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? '')) break;
        await this.#backoff(attempt, undefined, deadlineAt);
        continue;
      }
      const { status } = response;
      outcome.status = String(status);
      if (status >= 200 && status < 300) return response;
      response.body.resume();
      if (status === 404) {
        const name = `${target.registry}/${target.repository} ${target.reference}`;
        if (target.kind === 'blobs') throw new BlobUnknownError(`upstream has no blob ${name}`);
        if (target.kind === 'tags') throw new NameUnknownError(`upstream has no repository ${name}`);
        throw new ManifestUnknownError(
          `upstream has no ${target.kind === 'referrers' ? 'referrers of' : 'manifest'} ${name}`,
        );
      }
      if ((status === 401 || status === 403) && !foreign) {
        throw new UpstreamUnauthorizedError(
          `${target.registry} refused access to ${target.repository} (${status})`,
          {
            detail: { upstreamStatus: status },
          },
        );
      }
      lastStatus = status;
      // A redirect target that refuses (a signed URL that expired on the way) is asked for anew, through the
      // registry, like a server error.
      if (status !== 429 && status < 500 && !foreign) break;
      await this.#backoff(attempt, response.headers['retry-after'], deadlineAt);
    }
    const why =
      lastStatus === undefined
        ? String((lastError as Error)?.message ?? lastError)
        : `answered ${lastStatus}`;
    throw new UpstreamUnavailableError(`${target.registry} ${why}`, {
      cause: lastError,
      detail: lastStatus === undefined ? undefined : { upstreamStatus: lastStatus },
    });
  }

  async #backoff(
    attempt: number,
    retryAfter: string | string[] | undefined,
    deadlineAt: number,
  ): Promise<void> {
    if (attempt >= this.#retries) return;
    const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    const ms =
      Number.isFinite(seconds) && seconds >= 0
        ? Math.min(seconds * 1000, RETRY_AFTER_CAP_MS)
        : this.#backoffMs * 2 ** attempt;
    await sleep(Math.max(0, Math.min(ms, deadlineAt - Date.now())));
  }

  /**
   * One request through the auth flow, then through the redirects a registry sends for blobs (see
   * `followRedirects`); the registry's Authorization goes only to its own origin.
   */
  async #followed(
    registry: string,
    url: string,
    scope: string,
    opts: SendOptions,
  ): Promise<{ response: UpstreamResponse; foreign: boolean }> {
    const origin = new URL(url).origin;
    return followRedirects(registry, new URL(url), await this.#authorized(registry, url, scope, opts), {
      check: (next) => this.#guard.checkUrl(next),
      ask: (next) =>
        next.origin === origin
          ? this.#authorized(registry, next.href, scope, opts)
          : this.#sender.send(next.href, opts, undefined),
    });
  }

  /** One request through the auth flow: answer a known challenge up front, or learn it from a 401. */
  async #authorized(
    registry: string,
    url: string,
    scope: string,
    opts: SendOptions,
  ): Promise<UpstreamResponse> {
    const known = this.#tokens.challengeOf(registry);
    const upFront =
      known === undefined ? undefined : await this.#tokens.answer(registry, known, scope, false);
    const first = await this.#sender.send(url, opts, upFront);
    if (first.status !== 401) return first;
    const challenge = parseChallenge(first.headers['www-authenticate'] as string | undefined);
    if (challenge === undefined) return first;
    first.body.resume();
    this.#tokens.learn(registry, challenge);
    // A cached token the registry refused (expired early, revoked) is dropped and fetched anew, once.
    const answer = await this.#tokens.answer(registry, challenge, scope, true);
    if (answer === undefined) return first;
    return this.#sender.send(url, opts, answer);
  }
}
