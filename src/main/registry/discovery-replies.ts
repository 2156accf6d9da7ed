import { ManifestUnknownError, NameUnknownError, PaginationInvalidError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { MEDIA_TYPE_OCI_INDEX } from '../oci/media-types.js';
import type { Discovery } from '../tags/discovery.js';
import { withTimeout } from '../util/timeout.js';
import { bodyReply, type Reply } from './reply.js';
import type { PullRequest } from './request.js';
import type { RequestTrace } from './trace.js';

/** What the content-discovery replies need of the handler. */
export interface DiscoveryReplyInit {
  discovery: Discovery | undefined;
  /** `--registry-filters`: a tag whose `registry/repo:tag` matches one is left out of lists. */
  filters: readonly RegExp[];
  /** Longest wait for an answer, in ms (`--manifest-timeout`). */
  timeoutMs: number;
}

/** Most tags one tag-list page holds when the client names no `n`. */
export const TAG_PAGE_MAX = 10_000;

const EMPTY_INDEX = { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] };

/** A page of the tag list: lexical order, `n` at most, after `last`, with a `Link` to the next page. */
export async function tagListReply(
  init: DiscoveryReplyInit,
  registry: string,
  repository: string,
  request: PullRequest,
  head: boolean,
  trace: RequestTrace,
): Promise<Reply> {
  const params = new URLSearchParams(request.query);
  const n = params.get('n');
  const last = params.get('last') ?? '';
  if (n !== null && !/^\d{1,9}$/.test(n))
    throw new PaginationInvalidError(`n must be a count, not ${JSON.stringify(n.slice(0, 20))}`);
  const limit = n === null ? TAG_PAGE_MAX : Math.min(Number(n), TAG_PAGE_MAX);
  const list =
    init.discovery === undefined
      ? { tags: [], source: 'local' as const }
      : await withTimeout(
          init.discovery.tags(registry, repository),
          init.timeoutMs,
          'the tag list',
          (message) => new NameUnknownError(`tags of ${repository}: ${message}`),
        );
  trace.source = list.source;
  const served = list.tags.filter(
    (tag) => !init.filters.some((filter) => filter.test(`${registry}/${repository}:${tag}`)),
  );
  if (served.length === 0) throw new NameUnknownError(`no tags of ${registry}/${repository} are known`);
  const after = [...new Set(served)].sort().filter((tag) => tag > last);
  const page = after.slice(0, limit);
  const name = request.path.slice('/v2/'.length, -'/tags/list'.length);
  const body = Buffer.from(JSON.stringify({ name, tags: page }));
  const link: Array<readonly [string, string]> = [];
  if (after.length > page.length && page.length > 0) {
    const next = new URLSearchParams({ n: String(limit), last: page[page.length - 1] as string });
    const ns = params.get('ns');
    if (ns !== null) next.set('ns', ns);
    link.push(['Link', `</v2/${name}/tags/list?${next.toString()}>; rel="next"`]);
  }
  return bodyReply(200, 'application/json', body, head, link);
}

/** The referrers index of a digest (an empty one when none is known). */
export async function referrersReply(
  init: DiscoveryReplyInit,
  registry: string,
  repository: string,
  digest: Digest,
  request: PullRequest,
  head: boolean,
  trace: RequestTrace,
): Promise<Reply> {
  const artifactType = new URLSearchParams(request.query).get('artifactType') ?? undefined;
  const empty = {
    body: Buffer.from(JSON.stringify(EMPTY_INDEX)),
    filtered: artifactType !== undefined,
    source: 'local' as const,
  };
  const index =
    init.discovery === undefined
      ? empty
      : await withTimeout(
          init.discovery.referrers(registry, repository, digest, artifactType),
          init.timeoutMs,
          'the referrers',
          () => new ManifestUnknownError('referrers timed out'),
        ).catch((err: unknown) => {
          if (err instanceof ManifestUnknownError) return empty;
          throw err;
        });
  trace.source = index.source;
  const filtered: Array<readonly [string, string]> = index.filtered
    ? [['OCI-Filters-Applied', 'artifactType']]
    : [];
  return bodyReply(200, MEDIA_TYPE_OCI_INDEX, index.body, head, filtered);
}
