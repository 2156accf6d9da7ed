import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { type CheckResult, evaluate, type Observed } from './checks.js';

export interface PreflightInit {
  /** Time between runs, in ms; default 5 minutes. */
  intervalMs?: number;
  /** A failed check makes the node unready (`--strict-preflight`); default false: a warning only. */
  strict?: boolean;
}

/** The latest preflight: when it ran and what each check found. */
export interface PreflightReport {
  ranAt: number;
  ok: boolean;
  results: CheckResult[];
}

/**
 * Checks, at start and every few minutes, what this node can see of containerd's setup: whether pulls can
 * reach it at all. A mirror's fallback is silent by design (a broken setup still pulls, from the registry),
 * so each failure is a warning naming its fix, `shoal_preflight_ok{check}`, and a line on the debug page;
 * with `strict`, it also keeps the node unready.
 */
export class Preflight {
  readonly #observe: () => Promise<Observed>;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #strict: boolean;
  #report: PreflightReport | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    deps: { observe: () => Promise<Observed>; log: Logger; metrics?: Metrics | undefined },
    init: PreflightInit = {},
  ) {
    this.#observe = deps.observe;
    this.#log = deps.log;
    this.#intervalMs = init.intervalMs ?? 300_000;
    this.#strict = init.strict ?? false;
    deps.metrics?.watchPreflight(() =>
      Object.fromEntries((this.#report?.results ?? []).map((result) => [result.check, result.ok ? 1 : 0])),
    );
  }

  /** Runs the checks now and then every interval, in the background. */
  start(): void {
    const run = (): void => {
      this.run().catch((err: unknown) => this.#log.error({ err }, 'preflight could not run'));
    };
    run();
    this.#timer = setInterval(run, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
  }

  /** The latest report; undefined before the first run. */
  get report(): PreflightReport | undefined {
    return this.#report;
  }

  /** False only with `strict`, once a check has failed. */
  ready(): boolean {
    return !this.#strict || this.#report?.ok === true;
  }

  /** Runs every check now, logs each failure with its fix, and keeps the report. */
  async run(): Promise<PreflightReport> {
    const results = evaluate(await this.#observe());
    const report = { ranAt: Date.now(), ok: results.every((result) => result.ok), results };
    this.#report = report;
    for (const failed of results.filter((result) => !result.ok)) {
      this.#log.warn(
        { check: failed.check, fix: failed.fix, strict: this.#strict },
        `preflight ${failed.check}: ${failed.summary}`,
      );
    }
    if (report.ok) this.#log.info({ checks: results.map((result) => result.check) }, 'preflight passed');
    return report;
  }
}
