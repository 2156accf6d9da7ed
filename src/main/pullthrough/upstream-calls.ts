import type { Readable } from 'node:stream';
import { UpstreamUnavailableError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { isManifestMediaType, MANIFEST_ACCEPT, MEDIA_TYPE_OCTET_STREAM } from '../oci/media-types.js';
import type { ContentOrigin } from '../store/store.js';
import type { UpstreamClient } from './upstream.js';

/** HEADs `reference` upstream for the digest it names and its media type; its size is not trusted. */
export async function describeUpstream(
  upstream: UpstreamClient,
  origin: ContentOrigin,
  reference: string,
  signal?: AbortSignal,
): Promise<{ digest: Digest; mediaType: string }> {
  const response = await upstream.request(
    { ...origin, reference },
    { method: 'HEAD', accept: origin.kind === 'manifests' ? MANIFEST_ACCEPT : '*/*', signal },
  );
  response.body.resume();
  const digest = response.headers['docker-content-digest'];
  const contentType = response.headers['content-type'];
  const named = isDigest(reference) ? reference : digest;
  if (typeof named !== 'string' || !isDigest(named)) {
    throw new UpstreamUnavailableError(`upstream gave no usable digest for ${reference}`);
  }
  const mediaType =
    origin.kind === 'manifests' && isManifestMediaType(contentType) ? contentType : MEDIA_TYPE_OCTET_STREAM;
  return { digest: named as Digest, mediaType };
}

/** The rest of `digest` from byte `offset`, upstream: only a 206 that starts there will do. */
export async function resumeUpstream(
  upstream: UpstreamClient,
  log: Logger | undefined,
  at: { digest: Digest; origin: ContentOrigin; offset: number },
): Promise<Readable> {
  const { digest, origin, offset } = at;
  const response = await upstream.request(
    { ...origin, reference: digest },
    { method: 'GET', accept: '*/*', range: `bytes=${offset}-` },
  );
  const range = String(response.headers['content-range'] ?? '');
  if (response.status !== 206 || !range.startsWith(`bytes ${offset}-`)) {
    response.body.destroy();
    throw new UpstreamUnavailableError(`upstream did not resume ${digest} at byte ${offset}`);
  }
  log?.info({ digest, offset }, 'pull-through download resumed');
  return response.body;
}
