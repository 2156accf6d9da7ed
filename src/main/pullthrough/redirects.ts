import { UpstreamRefusedError } from '../errors.js';
import type { UpstreamResponse } from './upstream.js';

/** Redirects followed per request: registries send one (to object storage or a CDN), rarely two. */
export const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Follows the redirects a registry sends for blobs (signed URLs on object storage or a CDN) from `first`,
 * the answer to `start`. Each hop must name a valid Location, pass `check` (the upstream guard), and
 * never downgrade https to http; `ask` sends the next request. `foreign` tells whether the final answer
 * came from another origin than `start`'s.
 */
export async function followRedirects(
  registry: string,
  start: URL,
  first: UpstreamResponse,
  hooks: { check: (next: URL) => Promise<void>; ask: (next: URL) => Promise<UpstreamResponse> },
): Promise<{ response: UpstreamResponse; foreign: boolean }> {
  let response = first;
  let current = start;
  for (let hop = 0; REDIRECTS.has(response.status); hop++) {
    const location = response.headers.location;
    response.body.resume();
    if (location === undefined || location === '') {
      throw new UpstreamRefusedError(`${registry} answered ${response.status} without a Location`);
    }
    if (hop >= MAX_REDIRECTS) {
      throw new UpstreamRefusedError(`${registry} redirected more than ${MAX_REDIRECTS} times`);
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch (cause) {
      throw new UpstreamRefusedError(`${registry} redirected to an invalid Location`, { cause });
    }
    if (current.protocol === 'https:' && next.protocol !== 'https:') {
      throw new UpstreamRefusedError(`${registry} redirected from https to ${next.protocol}`);
    }
    await hooks.check(next);
    current = next;
    response = await hooks.ask(next);
  }
  return { response, foreign: current.origin !== start.origin };
}
