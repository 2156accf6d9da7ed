// Parking slow readers: the budget every parked stream of a server shares, and how a stream tells it is slow.

/** Bytes parked streams may hold outside the pool, shared by every stream of a server. */
export class ParkBudget {
  readonly limit: number;
  used = 0;
  /** Streams parked now. */
  streams = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

/** Whether `work` settles within `ms`. */
export function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void work.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
