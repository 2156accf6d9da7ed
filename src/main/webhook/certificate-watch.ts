import { type FSWatcher, watch } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../log/logger.js';
import { readTlsPair, type TlsFiles, type TlsPair } from '../registry/tls.js';

/** A look at the files between watch events: some volumes send none, and a missed event must not last. */
const POLL_MS = 60_000;
/** Events come in bursts (a Secret volume swaps a symlink and removes a directory): checked once after. */
const SETTLE_MS = 100;
/** A certificate this close to its end is warned about at every check. */
const WARN_BEFORE_MS = 7 * 24 * 3600_000;

/**
 * Watches a certificate and key on disk and hands each new, valid pair to `onChange`. A renewal (by
 * cert-manager, into the Secret the pod mounts) reaches the files within the kubelet's sync period; the
 * directories are watched, since a Secret volume replaces its files by swapping a symlink. A pair that does
 * not hold together yet (the certificate written, not the key) is skipped until it does: the pair in use
 * stays. An expired certificate is an error at every check, and `expired()` says so for readiness.
 */
export class CertificateWatch {
  readonly #files: TlsFiles;
  readonly #flags: { cert: string; key: string };
  readonly #log: Logger;
  readonly #onChange: (pair: TlsPair) => void;
  #current: TlsPair;
  #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #again = false;

  constructor(
    deps: { log: Logger; onChange: (pair: TlsPair) => void },
    init: { files: TlsFiles; flags: { cert: string; key: string }; current: TlsPair },
  ) {
    this.#log = deps.log;
    this.#onChange = deps.onChange;
    this.#files = init.files;
    this.#flags = init.flags;
    this.#current = init.current;
  }

  expired(now = Date.now()): boolean {
    return this.#current.notAfter.getTime() <= now;
  }

  start(): void {
    for (const dir of new Set([dirname(this.#files.certFile), dirname(this.#files.keyFile)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#soon());
        watcher.on('error', (err) => this.#log.warn({ err, dir }, 'cannot watch the webhook certificate'));
        this.#watchers.push(watcher);
      } catch (err) {
        this.#log.warn({ err, dir }, 'cannot watch the webhook certificate; looking every minute');
      }
    }
    this.#poll = setInterval(() => void this.check(), POLL_MS);
    this.#poll.unref();
    this.#judge();
  }

  stop(): void {
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
  }

  /** Reads the files once (one check at a time; a change during a check is looked at again after it). */
  check(): Promise<void> {
    if (this.#checking !== undefined) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = this.#read().finally(() => {
      this.#checking = undefined;
      if (this.#again) {
        this.#again = false;
        void this.check();
      }
    });
    return this.#checking;
  }

  #soon(): void {
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => void this.check(), SETTLE_MS);
    this.#settle.unref();
  }

  async #read(): Promise<void> {
    let pair: TlsPair;
    try {
      pair = await readTlsPair(this.#files, this.#flags);
    } catch (err) {
      this.#log.warn(
        { err: (err as Error).message },
        'webhook certificate files do not hold together yet; serving the previous one',
      );
      return;
    }
    if (pair.cert !== this.#current.cert || pair.key !== this.#current.key) {
      this.#onChange(pair);
      this.#current = pair;
      this.#log.info({ notAfter: pair.notAfter.toISOString() }, 'webhook certificate reloaded');
    }
    this.#judge();
  }

  #judge(now = Date.now()): void {
    const notAfter = this.#current.notAfter.toISOString();
    if (this.expired(now)) {
      this.#log.error(
        { notAfter },
        'the webhook certificate has expired: the API server refuses it, and no tag is pinned',
      );
    } else if (this.#current.notAfter.getTime() - now < WARN_BEFORE_MS) {
      this.#log.warn({ notAfter }, 'the webhook certificate expires within 7 days');
    }
  }
}
