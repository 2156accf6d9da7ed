import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RangeNotSatisfiableError } from '../../../src/main/errors.js';
import { parseRange } from '../../../src/main/oci/range.js';

describe('parseRange', () => {
  it('returns undefined without a header', () => {
    assert.equal(parseRange(undefined, 10), undefined);
    assert.equal(parseRange('', 10), undefined);
  });
  it('parses a-b, a- and -n', () => {
    assert.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 0 });
    assert.deepEqual(parseRange('bytes=2-5', 10), { start: 2, end: 5 });
    assert.deepEqual(parseRange('bytes=4-', 10), { start: 4, end: 9 });
    assert.deepEqual(parseRange('bytes=-3', 10), { start: 7, end: 9 });
  });
  it('clamps an end past the blob and a suffix longer than it', () => {
    assert.deepEqual(parseRange('bytes=5-100', 10), { start: 5, end: 9 });
    assert.deepEqual(parseRange('bytes=-100', 10), { start: 0, end: 9 });
  });
  it('answers 416 for ranges outside the blob', () => {
    assert.throws(() => parseRange('bytes=10-', 10), RangeNotSatisfiableError);
    assert.throws(() => parseRange('bytes=-0', 10), RangeNotSatisfiableError);
    assert.throws(() => parseRange('bytes=0-', 0), RangeNotSatisfiableError);
  });
  it('answers 416 for a range that ends before it starts', () => {
    assert.throws(() => parseRange('bytes=5-2', 10), RangeNotSatisfiableError);
    assert.throws(() => parseRange('bytes=500-0', 1000), RangeNotSatisfiableError);
  });
  // RFC 9110 §14.2: an unknown unit must be ignored, and anything else shoal does not serve as one range is
  // ignored too: the whole body, never an error.
  for (const ignored of [
    'bytes=',
    'bytes=-',
    'items=0-1',
    'bytes=0-1,3-4',
    'bytes=a-b',
    'bytes=1-2-3',
    'bytes=99999999999999999-',
  ]) {
    it(`ignores ${ignored}`, () => assert.equal(parseRange(ignored, 10), undefined));
  }
  it('takes the unit in any case, and spaces around the spec', () => {
    assert.deepEqual(parseRange('Bytes= 2-3 ', 10), { start: 2, end: 3 });
  });
});
