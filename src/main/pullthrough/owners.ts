import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { CounterLike } from '../metrics/metrics.js';
import type { Digest } from '../oci/digest.js';
import type { Membership } from '../peer/membership.js';
import type { PeerAuth } from '../peer/peer-auth.js';
import { PeerRequestError, requestOwner } from '../peer/peer-client.js';
import type { Router } from '../routing/router.js';
import type { ContentOrigin } from '../store/store.js';
import type { OwnerElection } from './owner.js';
import type { UpstreamResponse } from './upstream.js';

/** How long to wait before asking again an owner that did not recognise this node as a member. */
const OWNER_RECHECK_MS = 1000;

/** Asking the node elected to fetch a digest from upstream for it; owners that failed are passed over. */
export class Owners {
  readonly #router: Router;
  readonly #election: OwnerElection;
  readonly #auth: PeerAuth;
  readonly #log: Logger | undefined;
  readonly #ownerTimeoutMs: number;
  /** Who may own a digest now; an owner that fails is left out of the electorate for a while. */
  readonly #membership: Membership;
  readonly #fetches: CounterLike<'result'> | undefined;

  constructor(
    deps: {
      router: Router;
      membership: Membership;
      election: OwnerElection;
      auth: PeerAuth;
      log?: Logger | undefined;
      /** Digests asked of their owner, by result (`ok`, `absent`, `failed`). */
      fetches?: CounterLike<'result'>;
    },
    init: { ownerTimeoutMs: number },
  ) {
    this.#fetches = deps.fetches;
    this.#router = deps.router;
    this.#membership = deps.membership;
    this.#election = deps.election;
    this.#auth = deps.auth;
    this.#log = deps.log;
    this.#ownerTimeoutMs = init.ownerTimeoutMs;
  }

  /**
   * With P2P on, the node with the highest rendezvous score among the live members fetches each digest from
   * upstream, and the others stream from it: one upstream download per digest for the whole cluster.
   * Undefined when this node is the owner, or the owner cannot be reached: then this node fetches itself,
   * so coalescing never becomes a single point of failure.
   */
  async ask(
    digest: Digest,
    origin: ContentOrigin,
  ): Promise<{ owner: string; response: UpstreamResponse } | undefined> {
    const router = this.#router;
    const election = this.#election;
    const auth = this.#auth;
    const members = this.#membership.electorate();
    const owner = election.owner(digest, members);
    this.#log?.debug({ digest, owner, self: router.selfId, members: members.length }, 'owner elected');
    if (owner === undefined || owner === router.selfId) return undefined;
    try {
      const provider = await router.provider(owner, AbortSignal.timeout(this.#ownerTimeoutMs));
      if (provider === undefined) throw new Error('unreachable');
      const path = `/v2/${origin.repository}/${origin.kind}/${digest}?ns=${encodeURIComponent(origin.registry)}`;
      const signed = { method: 'GET', target: path, range: undefined, mirrored: false, ownerFetch: true };
      const ask = async (): Promise<UpstreamResponse> =>
        requestOwner(
          provider.registry,
          path,
          origin.kind,
          this.#ownerTimeoutMs,
          await auth.headers(owner, signed),
        );
      let response: UpstreamResponse;
      try {
        response = await ask();
      } catch (err) {
        // 401: the owner does not count this node a member at this moment (its liveness check timed out on
        // a busy node, or its dial back did). Views settle within a second; fetching here instead would take
        // the digest from upstream a second time.
        if (!(err instanceof PeerRequestError && err.peerStatus === 401)) throw err;
        this.#log?.info({ digest, owner }, 'the owner did not recognise this node; asking again');
        await sleep(OWNER_RECHECK_MS);
        response = await ask();
      }
      this.#fetches?.inc({ result: 'ok' });
      return { owner, response };
    } catch (err) {
      const absent = err instanceof PeerRequestError && err.peerStatus === 404;
      this.#fetches?.inc({ result: absent ? 'absent' : 'failed' });
      this.#log?.warn({ err, digest, owner }, 'the owner of this digest failed; fetching from upstream');
      // An owner that answered (404: upstream has no such digest, or it hit its own deadline under load) is
      // alive: this digest is fetched here, and the owner is still asked for the others. Passing it over for
      // every digest would send each one upstream a second time.
      if (!(err instanceof PeerRequestError && err.answered)) this.failed(owner);
      return undefined;
    }
  }

  /** Passes `owner` over for a while: this node fetches what it would have owned. */
  failed(owner: string): void {
    this.#membership.setAside(owner, 'owner');
  }
}
