import { destination, pino, symbols } from 'pino';

type LogFn = (fields: Record<string, unknown>, message?: string) => void;

/** The logging seam every part takes; pino's shape, so a pino logger is one. */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  /** Whether lines of `level` are written (pino's); absent: assume they are. */
  isLevelEnabled?(level: string): boolean;
}

/** JSON logs to stderr (`to`: another file descriptor or a file, for tests), so stdout stays free for command output. */
export function createLogger(level: string, to: number | string = 2): Logger {
  return pino({ level, base: { app: 'shoal' } }, destination({ dest: to, sync: true })) as unknown as Logger;
}

/** A logger that drops everything; for tests and parts built without one. */
export function silentLogger(): Logger {
  return createLogger('silent');
}

/**
 * A writer of one kind of info line, given its fields already as JSON (`"a":1,"b":"x"`): framed as pino
 * frames its own lines (level, time, the logger's bindings, then `msg`) and written to the same
 * destination. For a line with one fixed shape written on every request: pino's generic serializer reads
 * each object's keys one by one, and once many shapes have gone through it those reads turn megamorphic,
 * which made a request line cost several times what building it directly does. Undefined when `log` does
 * not write info lines, or is not a logger made here (then use `log.info`).
 */
export function infoLineWriter(log: Logger, msg: string): ((fields: string) => void) | undefined {
  const instance = log as unknown as Record<symbol, unknown> & {
    levels?: { values?: Record<string, number> };
  };
  const stream = instance[symbols.streamSym] as { write(line: string): void } | undefined;
  const bindings = instance[symbols.chindingsSym];
  const level = instance.levels?.values?.info;
  if (stream === undefined || typeof bindings !== 'string' || level === undefined) return undefined;
  if (log.isLevelEnabled?.('info') !== true) return undefined;
  const tail = `,"msg":${JSON.stringify(msg)}}\n`;
  return (fields) => stream.write(`{"level":${level},"time":${Date.now()}${bindings},${fields}${tail}`);
}

/** Printable ASCII but the quote and the backslash: what a JSON string holds as it is. */
const PLAIN = /^[ !#-[\]-~]*$/;

/** `text` as a JSON string: as it is between quotes when nothing in it needs escaping (names, digests). */
export function jsonString(text: string): string {
  return PLAIN.test(text) ? `"${text}"` : JSON.stringify(text);
}
