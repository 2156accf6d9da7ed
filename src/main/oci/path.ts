import { NameInvalidError, RouteUnknownError, TagInvalidError } from '../errors.js';
import { type Digest, parseDigest } from './digest.js';
import { isTag, parseRepository } from './reference.js';

export type PullRoute =
  | { kind: 'ping' }
  | { kind: 'manifest'; repository: string; tag: string; digest?: undefined }
  | { kind: 'manifest'; repository: string; digest: Digest; tag?: undefined }
  | { kind: 'blob'; repository: string; digest: Digest };

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
  const manifestAt = rest.lastIndexOf('/manifests/');
  const blobAt = rest.lastIndexOf('/blobs/');
  if (manifestAt > 0 && manifestAt > blobAt) {
    const repository = parseRepository(rest.slice(0, manifestAt));
    const reference = rest.slice(manifestAt + '/manifests/'.length);
    if (reference.includes(':')) return { kind: 'manifest', repository, digest: parseDigest(reference) };
    if (!isTag(reference)) {
      // An empty or malformed reference is neither a tag nor a digest.
      throw new TagInvalidError(`invalid manifest reference ${JSON.stringify(reference.slice(0, 80))}`);
    }
    return { kind: 'manifest', repository, tag: reference };
  }
  if (blobAt > 0) {
    const repository = parseRepository(rest.slice(0, blobAt));
    const reference = rest.slice(blobAt + '/blobs/'.length);
    if (reference === 'uploads' || reference.startsWith('uploads/')) {
      throw new RouteUnknownError('blob uploads are not supported: shoal is a read-only mirror');
    }
    return { kind: 'blob', repository, digest: parseDigest(reference) };
  }
  throw new RouteUnknownError(`unknown path ${JSON.stringify(path.slice(0, 80))}`);
}
