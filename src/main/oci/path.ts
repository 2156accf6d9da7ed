import {
  BlobUnknownError,
  ManifestUnknownError,
  NameInvalidError,
  NameUnknownError,
  RouteUnknownError,
} from '../errors.js';
import { type Digest, digestAlgorithm, parseDigest } from './digest.js';
import { isTag, parseRepository } from './reference.js';

export type PullRoute =
  | { kind: 'ping' }
  | { kind: 'manifest'; repository: string; tag: string; digest?: undefined }
  | { kind: 'manifest'; repository: string; digest: Digest; tag?: undefined }
  | { kind: 'blob'; repository: string; digest: Digest }
  | { kind: 'tags'; repository: string }
  | { kind: 'referrers'; repository: string; digest: Digest };

/**
 * A repository name in a pull path. A name outside the grammar names nothing a registry could hold: 404
 * NAME_UNKNOWN, as the distribution registry answers (an uppercase name, say), not a 400.
 */
function repositoryIn(name: string): string {
  try {
    return parseRepository(name);
  } catch (err) {
    if (!(err instanceof NameInvalidError)) throw err;
    throw new NameUnknownError(err.message, { cause: err });
  }
}

/**
 * A digest in a pull path. Only sha256 content is served: any other algorithm (sha512) is unknown here, and
 * answered 404 before any header, so the client falls back at once and nothing is fetched for it.
 */
function servedDigest(text: string, kind: 'manifest' | 'blob'): Digest {
  const digest = parseDigest(text);
  if (digestAlgorithm(digest) !== 'sha256') {
    const message = `${digestAlgorithm(digest)} content is not served: shoal serves sha256 content only`;
    throw kind === 'blob' ? new BlobUnknownError(message) : new ManifestUnknownError(message);
  }
  return digest;
}

/**
 * Parses a raw (still percent-encoded) request path of the distribution pull API. Anything that is not
 * exactly a `/v2/` ping, a manifest or a blob path is rejected; escapes are never decoded, so no path can
 * name anything outside the store.
 */
export function parsePullPath(path: string): PullRoute {
  if (path === '/v2' || path === '/v2/') return { kind: 'ping' };
  if (!path.startsWith('/v2/'))
    throw new RouteUnknownError(`unknown path ${JSON.stringify(path.slice(0, 80))}`);
  if (path.includes('%')) {
    throw new NameInvalidError('percent-encoded characters are not allowed in repository paths');
  }
  const rest = path.slice(4);
  if (rest.endsWith('/tags/list')) {
    return { kind: 'tags', repository: repositoryIn(rest.slice(0, -'/tags/list'.length)) };
  }
  const referrersAt = rest.lastIndexOf('/referrers/');
  if (referrersAt > 0 && !rest.includes('/manifests/') && !rest.includes('/blobs/')) {
    const repository = repositoryIn(rest.slice(0, referrersAt));
    return {
      kind: 'referrers',
      repository,
      digest: parseDigest(rest.slice(referrersAt + '/referrers/'.length)),
    };
  }
  const manifestAt = rest.lastIndexOf('/manifests/');
  const blobAt = rest.lastIndexOf('/blobs/');
  if (manifestAt > 0 && manifestAt > blobAt) {
    const repository = repositoryIn(rest.slice(0, manifestAt));
    const reference = rest.slice(manifestAt + '/manifests/'.length);
    if (reference.includes(':'))
      return { kind: 'manifest', repository, digest: servedDigest(reference, 'manifest') };
    if (!isTag(reference)) {
      // An empty or malformed reference is neither a tag nor a digest: it names no manifest (the spec's 404).
      throw new ManifestUnknownError(`invalid manifest reference ${JSON.stringify(reference.slice(0, 80))}`);
    }
    return { kind: 'manifest', repository, tag: reference };
  }
  if (blobAt > 0) {
    const repository = repositoryIn(rest.slice(0, blobAt));
    const reference = rest.slice(blobAt + '/blobs/'.length);
    if (reference === 'uploads' || reference.startsWith('uploads/')) {
      throw new RouteUnknownError('blob uploads are not supported: shoal is a read-only mirror');
    }
    return { kind: 'blob', repository, digest: servedDigest(reference, 'blob') };
  }
  throw new RouteUnknownError(`unknown path ${JSON.stringify(path.slice(0, 80))}`);
}
