import { destination, pino } from 'pino';

type LogFn = (fields: Record<string, unknown>, message?: string) => void;

/** The logging seam every part takes; pino's shape, so a pino logger is one. */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

/** JSON logs to stderr, so stdout stays free for command output. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { app: 'shoal' } }, destination(2)) as unknown as Logger;
}

/** A logger that drops everything; for tests and parts built without one. */
export function silentLogger(): Logger {
  return createLogger('silent');
}
