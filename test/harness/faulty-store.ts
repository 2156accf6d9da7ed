import { ContentCorruptError } from '../../src/main/errors.js';
import type { Digest } from '../../src/main/oci/digest.js';
import type { ByteRange } from '../../src/main/oci/range.js';
import { MemoryStore } from '../../src/main/store/memory.js';
import type { BlobReader, Content } from '../../src/main/store/store.js';

/**
 * A memory store whose readers misbehave on purpose: stop after `shortAfter` bytes, hang, fail (reject, as
 * a digest check does) past `shortAfter` bytes, or serve the byte at offset `flipAt` altered (bit rot).
 */
export class FaultyStore extends MemoryStore {
  fault: 'none' | 'short' | 'hang' | 'flip' | 'fail' = 'none';
  shortAfter = 2 << 20;
  flipAt = 0;
  /** When set, only readers opened from byte 0 misbehave; a resume (a range from later on) is served whole. */
  faultFromStartOnly = false;
  /** Ranges opened, for asserting who served what. */
  readonly opened: ByteRange[] = [];
  /** Digests looked up and tags resolved by callers (not the stat a resolve makes), for counting what peers were asked. */
  readonly asked = { stat: 0, resolve: 0 };
  #resolving = false;

  override stat(digest: Digest): Promise<Content | undefined> {
    if (!this.#resolving) this.asked.stat++;
    return super.stat(digest);
  }

  override resolve(registry: string, repository: string, tag: string): Promise<Content | undefined> {
    this.asked.resolve++;
    // MemoryStore.resolve makes its stat before its first await, so only that stat is left uncounted.
    this.#resolving = true;
    const answer = super.resolve(registry, repository, tag);
    this.#resolving = false;
    return answer;
  }

  override async open(digest: Digest, range: ByteRange): Promise<BlobReader> {
    const inner = await super.open(digest, range);
    this.opened.push(range);
    const fault = this.faultFromStartOnly && range.start > 0 ? 'none' : this.fault;
    const limit = this.shortAfter;
    let served = 0;
    return {
      read: async (into) => {
        if (fault === 'hang' && served > 0) return new Promise<number>(() => undefined);
        if (fault === 'fail' && served >= limit) throw new ContentCorruptError('the store refused this read');
        const n = await inner.read(into);
        const at = this.flipAt - range.start - served;
        if (fault === 'flip' && at >= 0 && at < n) into.writeUInt8(into.readUInt8(at) ^ 1, at);
        served += n;
        return fault === 'short' && served > limit ? 0 : n;
      },
      close: () => inner.close(),
    };
  }
}
