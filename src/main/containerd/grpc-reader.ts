import { ContentCorruptError, StoreUnavailableError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { ByteRange } from '../oci/range.js';
import type { BlobReader } from '../store/store.js';
import { withTimeout } from '../util/timeout.js';
import type { ContainerdClient, ContentReadStream } from './client.js';

/**
 * Reads a byte range through containerd's Content/Read stream. One stream per reader; a message is only
 * pulled when the caller asks for more, so gRPC flow control carries backpressure to containerd.
 */
export class GrpcRangeReader implements BlobReader {
  readonly #call: ContentReadStream;
  readonly #digest: Digest;
  readonly #timeoutMs: number;
  #pending: Buffer = Buffer.alloc(0);
  #remaining: number;
  #closed = false;

  constructor(client: ContainerdClient, digest: Digest, range: ByteRange, timeoutMs: number) {
    this.#digest = digest;
    this.#timeoutMs = timeoutMs;
    this.#remaining = range.end - range.start + 1;
    this.#call = client.readContent(digest, range.start, this.#remaining);
  }

  async read(into: Buffer): Promise<number> {
    if (this.#remaining === 0) return 0;
    while (this.#pending.length === 0) {
      const next = await withTimeout(
        this.#call.messages.next(),
        this.#timeoutMs,
        `containerd read of ${this.#digest}`,
        (message) => new StoreUnavailableError(message),
      );
      if (next.done === true) {
        throw new ContentCorruptError(`containerd ended ${this.#digest} ${this.#remaining} bytes early`);
      }
      this.#pending = next.value.data;
    }
    const n = this.#pending.copy(into, 0, 0, Math.min(into.length, this.#remaining));
    this.#pending = this.#pending.subarray(n);
    this.#remaining -= n;
    return n;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#call.cancel();
  }
}
