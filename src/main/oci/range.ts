import { RangeNotSatisfiableError } from '../errors.js';

/** An inclusive byte range within a blob. */
export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

const BYTE_RANGE = /^(\d{0,16})-(\d{0,16})$/;

/**
 * Parses an HTTP Range header against a blob of `size` bytes, as RFC 9110 §14 says. Undefined means "send
 * the whole body, 200": no header, a unit other than bytes (which must be ignored), a header that does not
 * parse, or several ranges (a server may answer those with the whole body, and shoal does, rather than a
 * multipart body no registry client reads). One range that parses: `a-b`, `a-`, `-n`. One that cannot be
 * satisfied (starts past the end, ends before it starts, an empty suffix) throws 416 with the size.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (!/^bytes=/i.test(text)) return undefined;
  const spec = text.slice('bytes='.length).trim();
  if (spec.includes(',')) return undefined;
  const match = BYTE_RANGE.exec(spec);
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw new RangeNotSatisfiableError('empty suffix range', size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  if (start >= size) throw new RangeNotSatisfiableError(`Range start ${start} is beyond size ${size}`, size);
  if (end < start) throw new RangeNotSatisfiableError(`Range end ${end} is before start ${start}`, size);
  return { start, end: Math.min(end, size - 1) };
}
