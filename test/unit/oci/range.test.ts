import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RangeInvalidError, RangeNotSatisfiableError } from '../../../src/main/errors.js';
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
  for (const bad of [
    'bytes=',
    'bytes=-',
    'bytes=5-2',
    'items=0-1',
    'bytes=0-1,3-4',
    'bytes=a-b',
    'bytes=1-2-3',
    'bytes=99999999999999999-',
  ]) {
    it(`rejects ${bad}`, () => assert.throws(() => parseRange(bad, 10), RangeInvalidError));
  }
});
