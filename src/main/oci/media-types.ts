import { type Digest, isDigest } from './digest.js';

export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_OCTET_STREAM = 'application/octet-stream';

export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_LIST,
  MEDIA_TYPE_DOCKER_MANIFEST,
]);

/** The Accept header that asks a registry for any manifest or index shoal understands. */
export const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES].join(', ');

/** Manifests and indexes are buffered and sniffed; nothing larger is treated as one. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export function isManifestMediaType(mediaType: string | undefined): mediaType is string {
  return mediaType !== undefined && MANIFEST_MEDIA_TYPES.has(mediaType);
}

/**
 * Returns the media type of a manifest or index from its JSON bytes, or undefined when the bytes are not
 * one (configs, layers, anything else). Uses the `mediaType` field when present, else the shape.
 */
export function sniffManifestMediaType(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0 || bytes.length > MAX_MANIFEST_BYTES || bytes[0] !== 0x7b /* { */) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const fields = doc as Record<string, unknown>;
  if (fields.schemaVersion !== 2) return undefined;
  if (typeof fields.mediaType === 'string') {
    return isManifestMediaType(fields.mediaType) ? fields.mediaType : undefined;
  }
  if (Array.isArray(fields.manifests)) return MEDIA_TYPE_OCI_INDEX;
  if (typeof fields.config === 'object' && fields.config !== null && Array.isArray(fields.layers)) {
    return MEDIA_TYPE_OCI_MANIFEST;
  }
  return undefined;
}

/**
 * Whether a client's `Accept` admits a manifest of `mediaType`. No header, a wildcard (any type, or any
 * application type) or a list that names no manifest type at all admits anything; a list of manifest types
 * admits only those, as the distribution registry does (a client that lists only Docker v2 manifests is not
 * sent an index).
 */
export function acceptsManifest(accept: string | undefined, mediaType: string): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  const types = accept
    .split(',')
    .map((part) => (part.split(';')[0] ?? '').trim().toLowerCase())
    .filter((type) => type !== '');
  if (types.some((type) => type === '*/*' || type === 'application/*')) return true;
  if (!types.some((type) => MANIFEST_MEDIA_TYPES.has(type))) return true;
  return types.includes(mediaType.toLowerCase());
}

/** Most blobs of one manifest whose providers are looked up ahead (a manifest names a few dozen). */
const MAX_REFERENCED = 256;

/**
 * The digests of the config and layers an image manifest names (not an index: its children are manifests
 * the client picks among). Empty for anything that does not parse as one.
 */
export function referencedBlobs(bytes: Uint8Array, mediaType: string): Digest[] {
  if (mediaType !== MEDIA_TYPE_OCI_MANIFEST && mediaType !== MEDIA_TYPE_DOCKER_MANIFEST) return [];
  let doc: { config?: { digest?: unknown }; layers?: Array<{ digest?: unknown }> };
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    return [];
  }
  const named = [doc?.config, ...(Array.isArray(doc?.layers) ? doc.layers : [])].map(
    (entry) => entry?.digest,
  );
  return named
    .filter((digest): digest is Digest => typeof digest === 'string' && isDigest(digest))
    .slice(0, MAX_REFERENCED);
}
