import type { Digest } from '../oci/digest.js';
import type { Provider } from '../routing/router.js';
import type { PeerAuth } from './peer-auth.js';
import { getPeerBody, type PeerBodyResponse } from './peer-body.js';
import { expectDigest, type PeerResponse, requestPeer } from './peer-client.js';
import { peerGet } from './protocol.js';

/** What one request to one provider needs: proof of membership, a time bound, and who hears of excess. */
export interface PeerAskDeps {
  auth: PeerAuth;
  /** Bound on the wait for a peer's headers. */
  timeoutMs: number;
  /** A peer sent `extra` bytes past its Content-Length (dropped). */
  onOverlong: (peer: string, digest: Digest, extra: number) => void;
}

/**
 * GETs `digest` at `path` from one provider. An answer that names another digest is a wrong answer: its
 * body is dropped and the attempt fails, so the race asks the next provider.
 */
export async function askBody(
  deps: PeerAskDeps,
  provider: Provider,
  request: { path: string; digest: Digest; range: string | undefined },
  signal: AbortSignal,
): Promise<PeerBodyResponse> {
  const { path, digest, range } = request;
  const answer = await getPeerBody(provider.registry, path, {
    range,
    signal,
    timeoutMs: deps.timeoutMs,
    auth: await deps.auth.headers(provider.id, peerGet('GET', path, range)),
    onOverlong: (extra) => deps.onOverlong(provider.id, digest, extra),
  });
  try {
    expectDigest(answer.headers.get('docker-content-digest'), digest, provider.registry);
  } catch (err) {
    answer.body.destroy();
    throw err;
  }
  return answer;
}

/**
 * HEADs `paths` in order on one provider; the first that answers describes the content. When the key is a
 * digest (`expected`), an answer naming another digest is wrong, as with `askBody`.
 */
export async function askHead(
  deps: PeerAskDeps,
  provider: Provider,
  paths: readonly string[],
  expected: Digest | undefined,
  signal: AbortSignal,
): Promise<PeerResponse> {
  let lastError: unknown;
  for (const path of paths) {
    try {
      const answer = await requestPeer(provider.registry, path, {
        method: 'HEAD',
        signal,
        timeoutMs: deps.timeoutMs,
        auth: await deps.auth.headers(provider.id, peerGet('HEAD', path, undefined)),
      });
      const named = answer.headers['docker-content-digest'];
      if (expected !== undefined) expectDigest(named?.toString(), expected, provider.registry);
      return answer;
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
