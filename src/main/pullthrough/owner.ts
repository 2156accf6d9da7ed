import xxhash from 'xxhash-wasm';

type Hasher = Awaited<ReturnType<typeof xxhash>>;

/**
 * Picks the one node that fetches a digest from upstream: rendezvous (highest random weight) hashing, the
 * member with the highest `xxhash64(digest ‖ peerId)`. Every node that sees the same members picks the same
 * owner without talking to the others, and a member joining or leaving moves only the digests it wins or
 * held.
 */
export class OwnerElection {
  readonly #hasher: Hasher;

  private constructor(hasher: Hasher) {
    this.#hasher = hasher;
  }

  /** Loads the WebAssembly hasher once. */
  static async create(): Promise<OwnerElection> {
    return new OwnerElection(await xxhash());
  }

  score(digest: string, member: string): bigint {
    return this.#hasher.h64(`${digest}${member}`);
  }

  /** The owner of `digest` among `members`; ties (never seen in practice) go to the lower id. */
  owner(digest: string, members: Iterable<string>): string | undefined {
    let best: string | undefined;
    let bestScore = -1n;
    for (const member of members) {
      const score = this.score(digest, member);
      if (score > bestScore || (score === bestScore && best !== undefined && member < best)) {
        best = member;
        bestScore = score;
      }
    }
    return best;
  }
}
