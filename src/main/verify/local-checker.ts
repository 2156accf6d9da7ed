import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { type Digest, isDigest } from '../oci/digest.js';
import type { Content } from '../store/store.js';
import type { GuardedStore } from './guarded-store.js';
import type { DigestVerifier, Verdict } from './verifier.js';

export interface LocalCheckerInit {
  /** Run a scrub of the whole local store at start and every `scrubIntervalMs`; default false (`--verify-local`). */
  scrub?: boolean;
  /** Time between scrubs; default 24 h (`--verify-local-interval`). */
  scrubIntervalMs?: number;
  /** Bytes per second a scrub reads, so it stays in the background; default 64 MiB/s (`--verify-local-rate`). */
  bytesPerSecond?: number;
  /** A digest re-checked on a peer's report is not checked again on reports for this long; default 60 s. */
  reportCooldownMs?: number;
  /** Most reports waiting for a re-check; more are dropped; default 64. */
  maxQueuedReports?: number;
}

const CHUNK_BYTES = 1 << 20;

/** Why a check ran: a scheduled scrub, or a peer saying this node served bad bytes. */
export type CheckTrigger = 'scrub' | 'report';

/**
 * Hashes what the local store holds, in the digest workers, one piece at a time and throttled. Content that
 * does not match its digest is condemned (withdrawn, and deleted from shoal's own store).
 */
export class LocalChecker {
  readonly #store: GuardedStore;
  readonly #verifier: DigestVerifier;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #scrub: boolean;
  readonly #intervalMs: number;
  readonly #rate: number;
  readonly #cooldownMs: number;
  readonly #maxQueued: number;
  readonly #reported = new Map<Digest, number>();
  readonly #queue: Digest[] = [];
  #draining: Promise<void> | undefined;
  #stopped = new AbortController();
  #scrubbing: Promise<unknown> | undefined;

  constructor(
    deps: { store: GuardedStore; verifier: DigestVerifier; metrics: Metrics; log: Logger },
    init: LocalCheckerInit = {},
  ) {
    this.#store = deps.store;
    this.#verifier = deps.verifier;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#scrub = init.scrub ?? false;
    this.#intervalMs = init.scrubIntervalMs ?? 24 * 3600_000;
    this.#rate = init.bytesPerSecond ?? 64 << 20;
    this.#cooldownMs = init.reportCooldownMs ?? 60_000;
    this.#maxQueued = init.maxQueuedReports ?? 64;
  }

  start(): void {
    if (!this.#scrub) return;
    this.#stopped = new AbortController();
    const signal = this.#stopped.signal;
    const loop = async (): Promise<void> => {
      while (!signal.aborted) {
        await this.scrub(signal);
        await sleep(this.#intervalMs, undefined, { signal, ref: false }).catch(() => undefined);
      }
    };
    this.#scrubbing = loop().catch((err: unknown) => this.#log.error({ err }, 'scrub failed'));
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#scrubbing;
    await this.#draining;
  }

  /** Hashes every digest the store holds once; returns how many were checked and how many were corrupt. */
  async scrub(signal?: AbortSignal): Promise<{ checked: number; corrupt: number }> {
    let checked = 0;
    let corrupt = 0;
    const keys = await this.#store.inner.listKeys();
    for (const key of keys) {
      if (signal?.aborted) break;
      if (!isDigest(key)) continue;
      const verdict = await this.check(key as Digest, 'scrub');
      if (verdict === undefined) continue;
      checked++;
      if (!verdict.ok) corrupt++;
    }
    this.#log.info({ checked, corrupt }, 'local store scrubbed');
    return { checked, corrupt };
  }

  /**
   * A peer says this node served `digest` with bad bytes: queue a re-check, unless one ran lately. Returns
   * whether a re-check was queued.
   */
  report(digest: Digest): boolean {
    const now = Date.now();
    if ((this.#reported.get(digest) ?? 0) > now || this.#queue.includes(digest)) return false;
    if (this.#queue.length >= this.#maxQueued) return false;
    if (this.#reported.size > 4 * this.#maxQueued) {
      for (const [seen, until] of this.#reported) if (until <= now) this.#reported.delete(seen);
    }
    this.#reported.set(digest, now + this.#cooldownMs);
    this.#queue.push(digest);
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined;
    });
    return true;
  }

  /** Hashes one piece of local content; condemns it on a mismatch, pardons it when it checks out again. */
  async check(digest: Digest, trigger: CheckTrigger): Promise<Verdict | undefined> {
    const store = this.#store.inner;
    const content = await store.stat(digest);
    if (content === undefined) return undefined;
    const rate = trigger === 'scrub' ? this.#rate : 0;
    const path = await content.localPath?.();
    const verdict =
      path === undefined
        ? await this.#checkThroughReader(content, rate)
        : await this.#verifier.verifyFile(path, digest, content.size, { bytesPerSecond: rate });
    // Content that vanished or could not be read is not known to be corrupt.
    if (verdict.code === 'READ_FAILED' || verdict.code === 'ABORTED') return undefined;
    if (verdict.ok) {
      this.#store.pardon(digest);
    } else {
      this.#log.warn({ digest, trigger, verdict }, 'local content is corrupt; withdrawing it');
      await this.#store.condemn(digest);
      // Counted once withdrawn, as the metric says: whoever sees it move finds the content gone.
      this.#metrics.localCorrupt.inc({ trigger });
    }
    return verdict;
  }

  async #drain(): Promise<void> {
    for (let digest = this.#queue.shift(); digest !== undefined; digest = this.#queue.shift()) {
      try {
        const verdict = await this.check(digest, 'report');
        this.#metrics.corruptReports.inc({ result: verdict === undefined ? 'absent' : verdict.code });
      } catch (err) {
        this.#log.warn({ err, digest }, 're-check after a peer report failed');
      }
    }
  }

  /** For stores without plain files (containerd over gRPC): stream the content through a hash session. */
  async #checkThroughReader(content: Content, rate: number): Promise<Verdict> {
    const session = this.#verifier.session(content.digest, content.size);
    const buffer = Buffer.from(new SharedArrayBuffer(CHUNK_BYTES));
    const started = performance.now();
    let read = 0;
    if (content.size === 0) return session.finish();
    const reader = await content.open({ start: 0, end: Math.max(0, content.size - 1) });
    try {
      while (read < content.size) {
        const n = await reader.read(buffer);
        if (n === 0) break;
        await session.hashed(session.update(buffer.subarray(0, n)));
        read += n;
        const due = rate > 0 ? (read / rate) * 1000 - (performance.now() - started) : 0;
        if (due > 0) await sleep(due);
      }
      return await session.finish();
    } catch (err) {
      session.abort();
      return { ok: false, code: 'READ_FAILED', digest: '', bytes: read, message: (err as Error).message };
    } finally {
      await reader.close();
    }
  }
}
