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
  /**
   * The client asked for the bytes (a GET), not only their description: a store that must ask elsewhere
   * may fetch them at once, and describe them from that answer's headers, instead of asking twice.
   */
  body?: boolean;
  /**
   * Why nothing was found, as a store that asked elsewhere learnt it (the providers found, each one's
   * failure): the request's log line carries it when the request misses.
   */
  why?: string;
}

/** Adds `why` to what `origin` (a client's request, if any) will say about a miss. */
export function noteWhy(origin: ContentOrigin | undefined, why: string): void {
  if (origin !== undefined) origin.why = origin.why === undefined ? why : `${origin.why}; ${why}`;
}

/** Where content a request is served comes from: held here, a peer, the elected owner, or the registry. */
export type SourceKind = 'local' | 'peer' | 'owner' | 'upstream';

/**
 * The provenance of one content handle, set by the layer that made it. The peer id may be filled in once
 * bytes flow (the peer that wins the body race is known only then), so it is a field of a shared object:
 * a layer that copies the handle (`{ ...content }`) keeps the same provenance.
 */
export interface ContentSource {
  readonly kind: SourceKind;
  /** The peer (or elected owner) that sent the bytes, once known. */
  peer?: string;
  /** Served from a download another request started (pull-through's single flight). */
  readonly coalesced?: boolean;
}

/** What a handle without a source of its own came from: the node's own store. */
export const LOCAL_SOURCE: ContentSource = Object.freeze({ kind: 'local' });

/**
 * Pull-based reader over a byte range. The caller supplies the buffer, so memory stays in the caller's
 * fixed pool and backpressure is simply not calling `read` again.
 */
export interface BlobReader {
  /** Fills `into` from the current position; resolves 0 at the end of the range. */
  read(into: Buffer): Promise<number>;
  /**
   * Resolves once no buffer handed to `read` is in use any more, for a reader that keeps using one after
   * its read resolved (a digest worker hashing it in place). Absent: a buffer is free when `read` resolves.
   */
  idle?(): Promise<void>;
  /** Releases the file handle or stream. Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Content a store found: its description, and the way to its bytes. The store that described it opens it,
 * so a layer that wraps another never has to remember what it was told between a stat and an open, and a
 * request is answered from the copy it was described from (local, a peer, an upstream download).
 */
export interface Content extends Descriptor {
  /**
   * Opens an inclusive byte range. Throws BlobUnknownError when the content went away since it was found;
   * a reader of content that turns out shorter than its size throws ContentCorruptError instead of ending early.
   */
  open(range: ByteRange): Promise<BlobReader>;
  /**
   * The file holding the bytes, when the store keeps content as plain files this process can read: digest
   * workers then hash it in place. Absent or undefined: read it through `open`.
   */
  localPath?(): Promise<string | undefined>;
  /** Where the bytes come from; absent: the store's own content ({@link LOCAL_SOURCE}). */
  readonly source?: ContentSource;
  /**
   * Drops what the store prepared for an `open` that will not come (a body fetched with the description).
   * Safe to call after `open`, and more than once.
   */
  discard?(): void;
}

/** Where shoal reads content from: containerd's content store, the embedded store, or a fake. */
export interface ContentStore {
  readonly kind: string;
  /**
   * Resolves `<registry>/<repository>:<tag>` to the manifest it names, if that manifest can be served.
   * `origin` is the client's request, when there is one (its signal, and where to note why nothing was found).
   */
  resolve(
    registry: string,
    repository: string,
    tag: string,
    origin?: ContentOrigin,
  ): Promise<Content | undefined>;
  /** Finds content that is fully present (or that this layer can fetch), or undefined. */
  stat(digest: Digest, origin?: ContentOrigin): Promise<Content | undefined>;
  /**
   * Routing keys of everything held: every content digest, plus `<registry>/<repo>:<tag>` for each tag
   * whose manifest is held. The advertiser announces these.
   */
  listKeys(): Promise<Set<string>>;
  /** Calls `listener` (without detail) whenever what the store holds may have changed; returns an unsubscribe. */
  onChange(listener: () => void): () => void;
  /** Deletes content found corrupt, where the store is shoal's own. Absent: the store cannot delete. */
  remove?(digest: Digest): Promise<void>;
  /**
   * Content a client is about to ask for (the blobs of a manifest it was just served): a store that finds
   * content elsewhere may start looking now. Never waits, never fails.
   */
  prepare?(digests: readonly Digest[], origin: ContentOrigin): void;
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
export async function readAll(content: Content): Promise<Buffer> {
  const out = Buffer.allocUnsafe(content.size);
  if (content.size === 0) return out;
  const reader = await content.open({ start: 0, end: content.size - 1 });
  try {
    let filled = 0;
    while (filled < out.length) {
      const n = await reader.read(out.subarray(filled));
      if (n === 0)
        throw new ContentCorruptError(`${content.digest} ended at ${filled} of ${content.size} bytes`);
      filled += n;
    }
    return out;
  } finally {
    await reader.close();
  }
}
