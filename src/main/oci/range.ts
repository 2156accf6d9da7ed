import { RangeInvalidError, RangeNotSatisfiableError } from '../errors.js';

/** An inclusive byte range within a blob. */
export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

const RANGE_SPEC = /^bytes=(\d{0,16})-(\d{0,16})$/;

/**
 * Parses an HTTP Range header against a blob of `size` bytes. Returns undefined when there is no header.
 * Supports one range: `a-b`, `a-`, `-n`. Multiple ranges and malformed headers are rejected rather than
 * silently ignored, so a client never mistakes a whole body for the part it asked for.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined || header === '') return undefined;
  const match = RANGE_SPEC.exec(header.trim());
  if (match === null) {
    throw new RangeInvalidError(`unsupported Range header ${JSON.stringify(header.slice(0, 80))}`);
  }
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') throw new RangeInvalidError('Range header names no bytes');
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw new RangeNotSatisfiableError('empty suffix range', size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  if (start >= size) throw new RangeNotSatisfiableError(`Range start ${start} is beyond size ${size}`, size);
  if (end < start) throw new RangeInvalidError(`Range end ${end} is before start ${start}`);
  return { start, end: Math.min(end, size - 1) };
}
