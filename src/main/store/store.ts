import { ContentCorruptError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { ByteRange } from '../oci/range.js';

/** What a store knows of one piece of content. */
export interface Descriptor {
  readonly digest: Digest;
  readonly size: number;
  /**
   * The manifest or index media type when the content is one; `application/octet-stream` for every other
   * blob (layers, configs). The registry uses it to keep manifests and blobs apart.
   */
  readonly mediaType: string;
  /**
   * For a manifest found by tag: when a registry last confirmed that the tag names it (ms since the epoch),
   * where known. Tags answered from memory carry it so their staleness can be bounded (`--tag-max-age`).
   */
  readonly confirmedAt?: number;
}

/**
 * Where a request came from: the registry and repository a client asked under. Stores that serve by digest
 * ignore it; pull-through needs it to know where upstream the content lives.
 */
export interface ContentOrigin {
  registry: string;
  repository: string;
  kind: 'manifests' | 'blobs';
  /** Another node chose this one to fetch it from upstream: fetch, never forward again. */
  forwarded?: boolean;
  /**
   * Aborts when the client that asked has gone: work started only for it (a peer race, a lookup) stops.
   * Work others share (a download being spooled) goes on.
   */
  signal?: AbortSignal | undefined;
}

/**
 * Pull-based reader over a byte range. The caller supplies the buffer, so memory stays in the caller's
 * fixed pool and backpressure is simply not calling `read` again.
 */
export interface BlobReader {
  /** Fills `into` from the current position; resolves 0 at the end of the range. */
  read(into: Buffer): Promise<number>;
  /** Releases the file handle or stream. Safe to call more than once. */
  close(): Promise<void>;
}

/** Where shoal reads content from: containerd's content store, the embedded store, or a fake. */
export interface ContentStore {
  readonly kind: string;
  /** Resolves `<registry>/<repository>:<tag>` to the manifest it names, if that manifest is held. */
  resolve(registry: string, repository: string, tag: string): Promise<Descriptor | undefined>;
  /** Describes content that is fully present, or undefined. */
  stat(digest: Digest, origin?: ContentOrigin): Promise<Descriptor | undefined>;
  /**
   * Opens an inclusive byte range of present content. Throws BlobUnknownError when absent. A reader of
   * content that turns out shorter than its size throws ContentCorruptError instead of ending early.
   */
  open(digest: Digest, range: ByteRange, origin?: ContentOrigin): Promise<BlobReader>;
  /**
   * Routing keys of everything held: every content digest, plus `<registry>/<repo>:<tag>` for each tag
   * whose manifest is held. The advertiser announces these.
   */
  listKeys(): Promise<Set<string>>;
  /** Calls `listener` (without detail) whenever what the store holds may have changed; returns an unsubscribe. */
  onChange(listener: () => void): () => void;
  /**
   * The file holding `digest` when the store keeps content as plain files this process can read; digest
   * workers then hash it in place. Absent or undefined: content is read through `open`.
   */
  localPath?(digest: Digest): Promise<string | undefined>;
  /** Deletes content found corrupt, where the store is shoal's own. Absent: the store cannot delete. */
  remove?(digest: Digest): Promise<void>;
  /** True once the store can answer (containerd reachable, directories present). */
  ready(): Promise<boolean>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A store that shoal writes to itself. */
export interface WritableStore extends ContentStore {
  /**
   * Stores content after a digest worker has checked it (temp file, verify, fsync, rename). Throws
   * DigestInvalidError on mismatch and leaves nothing behind.
   */
  ingest(digest: Digest, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Descriptor>;
  /** Points `<registry>/<repository>:<tag>` at a manifest already in the store. */
  tag(registry: string, repository: string, tag: string, digest: Digest): Promise<void>;
}

/** Reads a whole piece of content into one buffer; for manifests, which are capped in size. */
export async function readAll(
  store: ContentStore,
  descriptor: Descriptor,
  origin?: ContentOrigin,
): Promise<Buffer> {
  const out = Buffer.allocUnsafe(descriptor.size);
  if (descriptor.size === 0) return out;
  const reader = await store.open(descriptor.digest, { start: 0, end: descriptor.size - 1 }, origin);
  try {
    let filled = 0;
    while (filled < out.length) {
      const n = await reader.read(out.subarray(filled));
      if (n === 0)
        throw new ContentCorruptError(`${descriptor.digest} ended at ${filled} of ${descriptor.size} bytes`);
      filled += n;
    }
    return out;
  } finally {
    await reader.close();
  }
}
