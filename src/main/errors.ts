/**
 * Every error shoal raises on purpose. Each class has a stable `code` (never reused once retired), the HTTP
 * status it maps to, and the OCI distribution error code used in JSON error bodies.
 */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'TAG_INVALID'
  | 'UNSUPPORTED'
  | 'RANGE_INVALID'
  | 'SIZE_INVALID'
  | 'UNAVAILABLE'
  | 'UNAUTHORIZED'
  | 'UNKNOWN';

export interface ShoalErrorOptions {
  cause?: unknown;
  detail?: unknown;
}

export class ShoalError extends Error {
  readonly code: string = 'SHOAL_ERROR';
  readonly status: number = 500;
  readonly ociCode: OciErrorCode = 'UNKNOWN';
  readonly detail: unknown;
  /**
   * What a client is told instead of `message` and `detail`, for errors whose particulars would inform an
   * attacker (which hosts and ports answer); undefined tells the message.
   */
  readonly publicMessage: string | undefined = undefined;

  constructor(message: string, options: ShoalErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.detail = options.detail;
  }
}

export class NameInvalidError extends ShoalError {
  override readonly code = 'NAME_INVALID';
  override readonly status = 400;
  override readonly ociCode = 'NAME_INVALID';
}

export class TagInvalidError extends ShoalError {
  override readonly code = 'TAG_INVALID';
  override readonly status = 400;
  override readonly ociCode = 'TAG_INVALID';
}

export class DigestInvalidError extends ShoalError {
  override readonly code = 'DIGEST_INVALID';
  override readonly status = 400;
  override readonly ociCode = 'DIGEST_INVALID';
}

/** A tag list's `n` that is not a count. */
export class PaginationInvalidError extends ShoalError {
  override readonly code = 'PAGINATION_NUMBER_INVALID';
  override readonly status = 400;
}

export class NameUnknownError extends ShoalError {
  override readonly code = 'NAME_UNKNOWN';
  override readonly status = 404;
  override readonly ociCode = 'NAME_UNKNOWN';
}

export class ManifestUnknownError extends ShoalError {
  override readonly code = 'MANIFEST_UNKNOWN';
  override readonly status = 404;
  override readonly ociCode = 'MANIFEST_UNKNOWN';
}

export class BlobUnknownError extends ShoalError {
  override readonly code = 'BLOB_UNKNOWN';
  override readonly status = 404;
  override readonly ociCode = 'BLOB_UNKNOWN';
}

/** A path outside the pull API (not a repository operation shoal knows). */
export class RouteUnknownError extends ShoalError {
  override readonly code = 'ROUTE_UNKNOWN';
  override readonly status = 404;
  override readonly ociCode = 'UNSUPPORTED';
}

export class MethodUnsupportedError extends ShoalError {
  override readonly code = 'METHOD_UNSUPPORTED';
  override readonly status = 405;
  override readonly ociCode = 'UNSUPPORTED';
}

export class RangeInvalidError extends ShoalError {
  override readonly code = 'RANGE_INVALID';
  override readonly status = 400;
  override readonly ociCode = 'RANGE_INVALID';
}

export class RangeNotSatisfiableError extends ShoalError {
  override readonly code = 'RANGE_NOT_SATISFIABLE';
  override readonly status = 416;
  override readonly ociCode = 'RANGE_INVALID';
  /** Total size of the blob, for `Content-Range: bytes *\/<size>`. */
  readonly size: number;
  constructor(message: string, size: number, options: ShoalErrorOptions = {}) {
    super(message, options);
    this.size = size;
  }
}

export class UriTooLongError extends ShoalError {
  override readonly code = 'URI_TOO_LONG';
  override readonly status = 414;
  override readonly ociCode = 'UNSUPPORTED';
}

export class HeadersTooLargeError extends ShoalError {
  override readonly code = 'HEADERS_TOO_LARGE';
  override readonly status = 431;
  override readonly ociCode = 'UNSUPPORTED';
}

export class BadRequestError extends ShoalError {
  override readonly code = 'BAD_REQUEST';
  override readonly status = 400;
  override readonly ociCode = 'UNSUPPORTED';
}

/** A request line whose method no HTTP parser knows (and, on the plain port, a TLS handshake's bytes). */
export class MethodNotImplementedError extends ShoalError {
  override readonly code = 'METHOD_NOT_IMPLEMENTED';
  override readonly status = 501;
  override readonly ociCode = 'UNSUPPORTED';
}

export class HttpVersionError extends ShoalError {
  override readonly code = 'HTTP_VERSION_UNSUPPORTED';
  override readonly status = 505;
  override readonly ociCode = 'UNSUPPORTED';
}

/** The request's head did not arrive in time. */
export class RequestTimeoutError extends ShoalError {
  override readonly code = 'REQUEST_TIMEOUT';
  override readonly status = 408;
  override readonly ociCode = 'UNSUPPORTED';
}

/** Content is larger than shoal is willing to buffer (manifests are capped). */
export class ManifestTooLargeError extends ShoalError {
  override readonly code = 'MANIFEST_TOO_LARGE';
  override readonly status = 404;
  override readonly ociCode = 'MANIFEST_UNKNOWN';
}

/** A backing store (containerd, disk) could not answer. */
export class StoreUnavailableError extends ShoalError {
  override readonly code = 'STORE_UNAVAILABLE';
  override readonly status = 503;
  override readonly ociCode = 'UNAVAILABLE';
}

/**
 * The node has no room to keep content it would fetch: larger than --cache-max-bytes, or the disk holding
 * the cache is full (or would be past the share kept free). Answered 404, so containerd fetches it from
 * the registry itself; a full disk is never taken for an upstream that broke off.
 */
export class DiskFullError extends ShoalError {
  override readonly code = 'DISK_FULL';
  override readonly status = 404;
  override readonly ociCode = 'BLOB_UNKNOWN';
  override readonly publicMessage = 'this node has no room to keep the content; fetch it from the registry';
}

/** Content in a store does not hash to its digest or is shorter than it claims. */
export class ContentCorruptError extends ShoalError {
  override readonly code = 'CONTENT_CORRUPT';
  override readonly status = 500;
  override readonly ociCode = 'UNKNOWN';
}

/**
 * The upstream registry answered 429 or 5xx, or could not be reached, after retries. `detail` carries the
 * upstream status when there was one.
 */
export class UpstreamUnavailableError extends ShoalError {
  override readonly code: string = 'UPSTREAM_UNAVAILABLE';
  override readonly status = 503;
  override readonly ociCode = 'UNAVAILABLE';
  // Whether a host was refused, closed, silent or unresolvable stays in the log: told to the caller, the
  // differences would make the registry port a port scanner.
  override readonly publicMessage = 'upstream unavailable';
}

/**
 * A request claimed peer treatment (`X-Shoal-Mirrored`, an owner fetch) without proving it comes from a
 * member of the cluster.
 */
export class PeerUnauthorizedError extends ShoalError {
  override readonly code = 'PEER_UNAUTHORIZED';
  override readonly status = 401;
  override readonly ociCode = 'UNAUTHORIZED';
}

/** A pull-through target the operator did not name, or one that resolves to a refused address. */
export class UpstreamRefusedError extends UpstreamUnavailableError {
  override readonly code = 'UPSTREAM_REFUSED';
}

/**
 * The upstream registry refused shoal's credentials (or asked for some and shoal has none). Answered 404,
 * not 401: a mirror that answers 401 would make containerd try to log in to the mirror, while a 404 sends it
 * to the registry itself, with its own credentials.
 */
export class UpstreamUnauthorizedError extends ShoalError {
  override readonly code = 'UPSTREAM_UNAUTHORIZED';
  override readonly status = 404;
  override readonly ociCode = 'UNAUTHORIZED';
}

/** A command-line or environment setting is wrong. The CLI prints the message and exits 2. */
export class ConfigError extends ShoalError {
  override readonly code = 'CONFIG_INVALID';
  override readonly status = 500;
}

export function isShoalError(err: unknown): err is ShoalError {
  return err instanceof ShoalError;
}
