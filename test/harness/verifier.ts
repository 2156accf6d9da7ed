import { silentLogger } from '../../src/main/log/logger.js';
import { Metrics } from '../../src/main/metrics/metrics.js';
import { VerifyPool, type VerifyPoolInit } from '../../src/main/verify/pool.js';

/** A started pool of real digest workers (one thread unless told), with its own metrics. */
export async function startVerifier(init: VerifyPoolInit = {}, metrics = new Metrics()): Promise<VerifyPool> {
  const pool = new VerifyPool({ log: silentLogger(), metrics }, { threads: 1, ...init });
  await pool.start();
  return pool;
}
