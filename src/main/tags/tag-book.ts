import { readFile } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { ChangeNotifier } from '../util/changes.js';

/** What the cluster last knew a tag to name, and when a registry last confirmed it (ms since the epoch). */
export interface TagRecord {
  readonly digest: Digest;
  readonly confirmedAt: number;
}

export interface TagBookInit {
  /** JSON file the book lives in (`<data-dir>/tags.json`); undefined keeps it in memory only. */
  path?: string | undefined;
  /** Oldest confirmation still served, in ms; 0 (default) serves any age (`--tag-max-age`). */
  maxAgeMs?: number;
  /** Most mappings kept; those confirmed longest ago go first. Default 50 000. */
  maxTags?: number;
  /**
   * Most invalidations heard from members remembered; the oldest go first. Default 10 000. The operator's
   * own (`shoal invalidate` on this node) are kept apart, as many again, and never pushed out by these.
   */
  maxInvalidations?: number;
  /**
   * Delay before a change is written, so a burst of pulls or of members' invalidations writes once; also
   * the shortest time between two such writes. Default 1 s.
   */
  flushDelayMs?: number;
}

/** Who an invalidation came from: this node's operator, or another member passing one on. */
export type InvalidationSource = 'operator' | 'member';

/** How far ahead of the clock a stored invalidation may lie; a later one was planted and is dropped. */
const MAX_FUTURE_MS = 5 * 60_000;

interface BookFile {
  version: 1;
  tags: Record<string, TagRecord>;
  /** name → when it was invalidated: answers confirmed before that are never served again. */
  invalidated: Record<string, number>;
  /** The names among `invalidated` that this node's operator invalidated. */
  operator?: string[];
}

/**
 * The last-known-good tag → digest map that keeps tags working when the registry is down. Each mapping
 * carries the time a registry last confirmed it; that time travels with it to peers, so `--tag-max-age`
 * bounds the staleness of an answer wherever in the cluster it comes from. An invalidation is remembered
 * as a time, so a mapping confirmed before it is refused whichever node still offers it, while a newer
 * confirmation (the registry answered again) supersedes it.
 */
export class TagBook {
  readonly #log: Logger | undefined;
  readonly #write: (path: string, text: string) => Promise<void>;
  readonly #path: string | undefined;
  readonly #maxAgeMs: number;
  readonly #maxTags: number;
  readonly #maxInvalidations: number;
  readonly #flushDelayMs: number;
  readonly #tags = new Map<string, TagRecord>();
  readonly #invalidated = new Map<string, number>();
  /** Names invalidated by this node's operator: evicted only by each other. */
  readonly #operator = new Set<string>();
  readonly #changes = new ChangeNotifier();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    deps: {
      log?: Logger | undefined;
      /** Writes the whole file atomically; default writeFileAtomic (temp, fsync, rename). */
      write?: (path: string, text: string) => Promise<void>;
    },
    init: TagBookInit = {},
  ) {
    this.#log = deps.log;
    this.#write = deps.write ?? ((path, text) => writeFileAtomic(path, text));
    this.#path = init.path;
    this.#maxAgeMs = init.maxAgeMs ?? 0;
    this.#maxTags = init.maxTags ?? 50_000;
    this.#maxInvalidations = init.maxInvalidations ?? 10_000;
    this.#flushDelayMs = init.flushDelayMs ?? 1000;
  }

  async start(): Promise<void> {
    if (this.#path === undefined) return;
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch {
      return;
    }
    try {
      const parsed = JSON.parse(text) as Partial<BookFile>;
      for (const [name, record] of Object.entries(parsed.tags ?? {})) {
        if (isDigest(record?.digest) && Number.isFinite(record?.confirmedAt)) this.#tags.set(name, record);
      }
      const latest = Date.now() + MAX_FUTURE_MS;
      for (const [name, at] of Object.entries(parsed.invalidated ?? {})) {
        if (Number.isSafeInteger(at) && at <= latest) this.#invalidated.set(name, at);
      }
      for (const name of parsed.operator ?? []) if (this.#invalidated.has(name)) this.#operator.add(name);
    } catch (err) {
      // A damaged book costs offline answers only; the registry refills it.
      this.#log?.warn({ err, path: this.#path }, 'the tag book cannot be read; starting empty');
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flush();
  }

  onChange(listener: () => void): () => void {
    return this.#changes.subscribe(listener);
  }

  /** The mapping of `name` that may be served now: within the max age and not invalidated since. */
  get(name: string, now = Date.now()): TagRecord | undefined {
    const record = this.#tags.get(name);
    return record !== undefined && this.admits(name, record.confirmedAt, now) ? record : undefined;
  }

  /** Every mapping held, servable or not; the advertiser picks those whose manifest is here. */
  entries(): IterableIterator<[string, TagRecord]> {
    return this.#tags.entries();
  }

  /**
   * Whether an answer for `name` confirmed at `confirmedAt` may be served: not older than the max age, and
   * not confirmed before an invalidation. An answer of unknown age passes the age bound (it has none to
   * check) but not an invalidation.
   */
  admits(name: string, confirmedAt: number | undefined, now = Date.now()): boolean {
    if (this.#predates(name, confirmedAt)) return false;
    return confirmedAt === undefined || this.#maxAgeMs <= 0 || now - confirmedAt <= this.#maxAgeMs;
  }

  /** An answer confirmed at `confirmedAt` (undefined: at an unknown time) may predate an invalidation. */
  #predates(name: string, confirmedAt: number | undefined): boolean {
    const invalidated = this.#invalidated.get(name);
    return invalidated !== undefined && (confirmedAt === undefined || confirmedAt <= invalidated);
  }

  /** Records that a registry named `digest` for `name` at `confirmedAt`; older news never wins. */
  confirm(name: string, digest: Digest, confirmedAt: number): void {
    const known = this.#tags.get(name);
    if (known !== undefined && known.confirmedAt >= confirmedAt) return;
    if (this.#predates(name, confirmedAt)) return;
    this.#tags.delete(name);
    this.#tags.set(name, { digest, confirmedAt });
    this.#invalidated.delete(name);
    this.#operator.delete(name);
    if (this.#tags.size > this.#maxTags) this.#evictOldest();
    this.#schedule();
    if (known?.digest !== digest) this.#changes.notify();
  }

  /**
   * Forgets `name` as of `at`: every answer confirmed until then is refused from now on. True when this is
   * news (no invalidation as late was known), so the caller passes it on. The operator's is written to disk
   * before it resolves; members' are written together at most once per flush delay, so a flood of them
   * costs one write a second, not one each.
   */
  async invalidate(name: string, at: number, source: InvalidationSource = 'operator'): Promise<boolean> {
    if ((this.#invalidated.get(name) ?? -1) >= at) return false;
    this.#invalidated.delete(name);
    this.#invalidated.set(name, at);
    if (source === 'operator') this.#operator.add(name);
    this.#evictInvalidations();
    const known = this.#tags.get(name);
    if (known !== undefined && known.confirmedAt <= at) this.#tags.delete(name);
    if (source === 'operator') {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.#flush();
    } else this.#schedule();
    this.#changes.notify();
    return true;
  }

  /** Keeps each kind of invalidation within its bound; members' floods never push the operator's out. */
  #evictInvalidations(): void {
    const members = this.#invalidated.size - this.#operator.size;
    const operatorOver = this.#operator.size > this.#maxInvalidations;
    if (members <= this.#maxInvalidations && !operatorOver) return;
    for (const name of this.#invalidated.keys()) {
      if (this.#operator.has(name) !== operatorOver) continue;
      this.#invalidated.delete(name);
      this.#operator.delete(name);
      return;
    }
  }

  /** Maps are kept in order of confirmation news, so the first is the one heard of longest ago. */
  #evictOldest(): void {
    const oldest = this.#tags.keys().next().value;
    if (oldest !== undefined) this.#tags.delete(oldest);
  }

  #schedule(): void {
    // One timer at a time: changes in between ride on the write it makes.
    if (this.#path === undefined || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, this.#flushDelayMs);
    this.#timer.unref();
  }

  /** Writes the whole book (temp, fsync, rename); writes run one after another. */
  #flush(): Promise<void> {
    const path = this.#path;
    if (path === undefined) return Promise.resolve();
    const write = this.#writing.then(async () => {
      const file: BookFile = {
        version: 1,
        tags: Object.fromEntries(this.#tags),
        invalidated: Object.fromEntries(this.#invalidated),
        operator: [...this.#operator],
      };
      await this.#write(path, JSON.stringify(file));
    });
    this.#writing = write.catch((err: unknown) => {
      this.#log?.warn({ err, path }, 'the tag book cannot be written');
    });
    return this.#writing;
  }
}
