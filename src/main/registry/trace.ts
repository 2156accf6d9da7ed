import type { RequestKind, RequestSource } from '../metrics/requests.js';
import type { Content, ContentOrigin } from '../store/store.js';

/**
 * What one request turned out to be, filled in by the handler as it learns it: what was asked for, under
 * which registry, and the content found (whose source says where the bytes come from). The listener that
 * ends the request adds the status, the bytes and the timing.
 */
export interface RequestTrace {
  kind: RequestKind;
  registry: string | undefined;
  repository: string | undefined;
  /** The tag or digest asked for. */
  reference: string | undefined;
  /** The content found, once found. */
  content: Content | undefined;
  /** The request as the stores saw it: a store that found nothing notes why in it (`why`). */
  origin: ContentOrigin | undefined;
  /** Where an answer without content came from (a tag list from upstream, the API ping); `none` until set. */
  source: RequestSource;
  /** Refused by the mirrored registries, `--registry-filters` or `--resolve-tags`. */
  filtered: boolean;
  /** The member a peer request proved it comes from. */
  member: string | undefined;
  /** A kubelet probe (`/livez`, `/readyz`): answered, never counted. */
  probe: boolean;
}

export function newTrace(): RequestTrace {
  return {
    kind: 'other',
    registry: undefined,
    repository: undefined,
    reference: undefined,
    content: undefined,
    origin: undefined,
    source: 'none',
    filtered: false,
    member: undefined,
    probe: false,
  };
}

/**
 * Where the handler writes when nobody counts (`--request-metrics=false`): one object for every request,
 * never read.
 */
export const DISCARDED_TRACE: RequestTrace = newTrace();
