// A digest worker that dies on purpose: the real tasks, except that a stream of CRASH_SIZE bytes kills its
// thread at the first chunk (as an out-of-memory abort or a native fault would).
import { hashStream as realHashStream } from '../../src/workers/hash.js';
import type { StreamTask, Verdict } from '../../src/workers/protocol.js';

export { hashFile, warm } from '../../src/workers/hash.js';

export const CRASH_SIZE = 666_666;

export function hashStream(task: StreamTask): Promise<Verdict> {
  if (task.size !== CRASH_SIZE) return realHashStream(task);
  task.port.on('message', () => process.exit(7));
  return new Promise(() => undefined);
}
