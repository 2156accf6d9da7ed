import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../oci/digest.js';

/**
 * Keeps a store's content under `maxBytes` by least-recent use. It only decides: the store deletes what
 * `victims` names. Content with a reader open (being served) is never chosen, so a stream is never cut by
 * eviction; the store may run over the bound until those readers finish.
 */
export class CacheBound {
  readonly maxBytes: number;
  readonly #sizes = new Map<Digest, number>();
  /** Last use of each digest; Map order is not relied on, the times are. */
  readonly #used = new Map<Digest, number>();
  readonly #readers = new Map<Digest, number>();
  #total = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get totalBytes(): number {
    return this.#total;
  }

  /** Bytes of `digest`, 0 when it is not held. */
  sizeOf(digest: Digest): number {
    return this.#sizes.get(digest) ?? 0;
  }

  /** Records content that is (now) held; `usedAt` defaults to now. */
  add(digest: Digest, size: number, usedAt = Date.now()): void {
    this.#total += size - (this.#sizes.get(digest) ?? 0);
    this.#sizes.set(digest, size);
    this.#used.set(digest, usedAt);
  }

  /** Records every sha256 blob file in `dir`, each last used at its mtime. */
  async addDirectory(dir: string): Promise<void> {
    for (const hex of await readdir(dir)) {
      if (!/^[0-9a-f]{64}$/.test(hex)) continue;
      const info = await stat(join(dir, hex));
      this.add(`sha256:${hex}` as Digest, info.size, info.mtimeMs);
    }
  }

  remove(digest: Digest): void {
    this.#total -= this.#sizes.get(digest) ?? 0;
    this.#sizes.delete(digest);
    this.#used.delete(digest);
  }

  /** Marks `digest` as being read until the returned function is called. */
  open(digest: Digest): () => void {
    this.#used.set(digest, Date.now());
    this.#readers.set(digest, (this.#readers.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#readers.get(digest) ?? 1) - 1;
      if (left <= 0) this.#readers.delete(digest);
      else this.#readers.set(digest, left);
    };
  }

  /** What to delete, least recently used first, to get back under the bound (none of it being read). */
  victims(): Digest[] {
    if (this.maxBytes <= 0 || this.#total <= this.maxBytes) return [];
    const candidates = [...this.#used.entries()]
      .filter(([digest]) => !this.#readers.has(digest))
      .sort((a, b) => a[1] - b[1]);
    const chosen: Digest[] = [];
    let total = this.#total;
    for (const [digest] of candidates) {
      if (total <= this.maxBytes) break;
      chosen.push(digest);
      total -= this.#sizes.get(digest) ?? 0;
    }
    return chosen;
  }
}
