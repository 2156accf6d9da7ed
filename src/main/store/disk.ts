import { type FileHandle, mkdir, statfs } from 'node:fs/promises';
import type { ByteSize } from '../config/values.js';
import { DiskFullError } from '../errors.js';

/**
 * Share of a filesystem left free whatever the cache holds: the kubelet starts evicting pods when less
 * than 10% of the node's filesystem is available (`nodefs.available<10%`), so the cache never takes that.
 */
export const FREE_SHARE_KEPT = 0.1;

/** Size and space left of the filesystem that holds `dir`, in bytes. */
export async function diskOf(dir: string): Promise<{ total: number; available: number }> {
  const info = await statfs(dir);
  return { total: info.blocks * info.bsize, available: info.bavail * info.bsize };
}

/** `size` in bytes: a share is of the filesystem holding `dir` (made if missing); 0 stays 0 (no bound). */
export async function resolveByteSize(size: ByteSize, dir: string): Promise<number> {
  if ('bytes' in size) return size.bytes;
  await mkdir(dir, { recursive: true });
  return Math.floor((await diskOf(dir)).total * size.share);
}

/** True for the errors a write gives when the disk (or the user's quota) is full. */
function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Runs `write`, turning a full disk into a DiskFullError that names `what`. */
export async function writing<T>(what: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (cause) {
    if (isDiskFull(cause)) throw new DiskFullError(`the disk is full while writing ${what}`, { cause });
    throw cause;
  }
}

/**
 * Writes all of `chunk` at `position`. A write on a filling disk can be short without an error (the next
 * one fails): the rest is written again, and a write that takes nothing is a full disk.
 */
export async function writeAll(
  file: FileHandle,
  chunk: Uint8Array,
  position: number,
  what: string,
): Promise<void> {
  for (let done = 0; done < chunk.length; ) {
    const { bytesWritten } = await writing(what, () =>
      file.write(chunk, done, chunk.length - done, position + done),
    );
    if (bytesWritten === 0) throw new DiskFullError(`the disk is full while writing ${what}`);
    done += bytesWritten;
  }
}

export type FullReason = 'bound' | 'disk' | 'write';

/**
 * Room in a cache for content about to be downloaded into it. A download takes its size before its first
 * byte and gives it back when it ends (committed or not), so concurrent downloads cannot together promise
 * more than the disk holds. Content larger than the bound, or that would leave the filesystem with less
 * than FREE_SHARE_KEPT free, is refused with a DiskFullError.
 */
export class CacheRoom {
  readonly maxBytes: number;
  readonly #dir: string;
  readonly #onFull: (reason: FullReason) => void;
  #reserved = 0;

  constructor(maxBytes: number, dir: string, onFull: (reason: FullReason) => void = () => undefined) {
    this.maxBytes = maxBytes;
    this.#dir = dir;
    this.#onFull = onFull;
  }

  /** Bytes promised to downloads under way. */
  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Takes room for `size` bytes until the download's `done` settles (`until`); throws DiskFullError when
   * there is none. A download that failed on a full disk is counted.
   */
  async take(size: number): Promise<{ until(done: Promise<unknown>): void }> {
    if (this.maxBytes > 0 && size > this.maxBytes) {
      this.#onFull('bound');
      throw new DiskFullError(`${size} bytes do not fit under --cache-max-bytes (${this.maxBytes})`);
    }
    const disk = await diskOf(this.#dir);
    const left = disk.available - this.#reserved - size;
    if (left < disk.total * FREE_SHARE_KEPT) {
      this.#onFull('disk');
      throw new DiskFullError(
        `${size} bytes would leave the disk of ${this.#dir} under ${FREE_SHARE_KEPT * 100}% free (${disk.available} bytes available, ${this.#reserved} promised)`,
      );
    }
    this.#reserved += size;
    return {
      until: (done) => {
        done.then(
          () => {
            this.#reserved -= size;
          },
          (err: unknown) => {
            this.#reserved -= size;
            if (err instanceof DiskFullError) this.#onFull('write');
          },
        );
      },
    };
  }
}
