import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { isManifestMediaType } from '../oci/media-types.js';
import type { Router } from '../routing/router.js';
import type { Descriptor } from '../store/store.js';
import type { Verdict } from '../verify/verifier.js';
import type { Membership } from './membership.js';

/** Who hears of peers that sent corrupt bytes. */
export interface CorruptDeps {
  metrics: Metrics;
  log: Logger | undefined;
  membership: Membership;
  router: Router;
  /** Forgets the providers found for a key, so the next request looks it up afresh. */
  race: { forget(key: string): void };
  /** Bound on telling each peer. */
  peerTimeoutMs: number;
}

/**
 * Peers sent bytes that fail `descriptor`'s digest: counted, logged, every one that sent part of it set
 * aside, and each told, so it checks its own copy.
 */
export function reportCorrupt(
  deps: CorruptDeps,
  what: { descriptor: Descriptor; peers: ReadonlyMap<string, string>; verdict: Verdict },
): void {
  const { descriptor, peers, verdict } = what;
  const kind = isManifestMediaType(descriptor.mediaType) ? 'manifest' : 'blob';
  deps.metrics.peerCorrupt.inc({ kind });
  deps.metrics.peerFailures.inc({ cause: 'digest_mismatch' }, peers.size);
  deps.log?.warn(
    { digest: descriptor.digest, peers: [...peers.keys()], verdict },
    'peer content failed its digest check; cutting the response and setting the peers aside',
  );
  for (const peer of peers.keys()) {
    deps.membership.setAside(peer, 'corrupt');
    const report = { kind: 'corrupt', digest: descriptor.digest } as const;
    void deps.router.tell(peer, report, AbortSignal.timeout(deps.peerTimeoutMs));
  }
  deps.race.forget(descriptor.digest);
}
