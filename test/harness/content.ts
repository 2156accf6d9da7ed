import { BlobUnknownError } from '../../src/main/errors.js';
import type { Digest } from '../../src/main/oci/digest.js';
import type { ByteRange } from '../../src/main/oci/range.js';
import type {
  BlobReader,
  Content,
  ContentOrigin,
  ContentStore,
  Descriptor,
} from '../../src/main/store/store.js';

/** Finds `digest` in `store` and opens `range` of it, as the handler does; BlobUnknownError when absent. */
export async function openContent(
  store: ContentStore,
  digest: Digest,
  range: ByteRange,
  origin?: ContentOrigin,
): Promise<BlobReader> {
  const content = await store.stat(digest, origin);
  if (content === undefined) throw new BlobUnknownError(`${digest} is not held by ${store.kind}`);
  return content.open(range);
}

/** What a store said about content, without the handle's functions: for deepEqual. */
export function described(content: Content | undefined): Descriptor | undefined {
  if (content === undefined) return undefined;
  const { digest, size, mediaType, confirmedAt } = content;
  return confirmedAt === undefined ? { digest, size, mediaType } : { digest, size, mediaType, confirmedAt };
}
