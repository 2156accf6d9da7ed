import { type FileHandle, open } from 'node:fs/promises';
import { ContentCorruptError } from '../errors.js';
import type { ByteRange } from '../oci/range.js';
import type { BlobReader } from './store.js';

/** Reads an inclusive byte range of a file with positional reads into caller-supplied buffers. */
export class FileRangeReader implements BlobReader {
  readonly #handle: FileHandle;
  readonly #path: string;
  #position: number;
  readonly #end: number;
  #closed = false;

  private constructor(handle: FileHandle, path: string, range: ByteRange) {
    this.#handle = handle;
    this.#path = path;
    this.#position = range.start;
    this.#end = range.end;
  }

  static async open(path: string, range: ByteRange): Promise<FileRangeReader> {
    return new FileRangeReader(await open(path, 'r'), path, range);
  }

  async read(into: Buffer): Promise<number> {
    const wanted = Math.min(into.length, this.#end - this.#position + 1);
    if (wanted <= 0) return 0;
    const { bytesRead } = await this.#handle.read(into, 0, wanted, this.#position);
    if (bytesRead === 0) {
      throw new ContentCorruptError(`${this.#path} ended at byte ${this.#position}, before ${this.#end + 1}`);
    }
    this.#position += bytesRead;
    return bytesRead;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}
