import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setBounded } from '../../../src/main/util/bounded-map.js';

describe('setBounded', () => {
  it('keeps at most `max` entries, forgetting the one set longest ago', () => {
    const map = new Map<string, number>();
    for (const [i, key] of ['a', 'b', 'c', 'd'].entries()) setBounded(map, key, i, 3);
    assert.deepEqual([...map.keys()], ['b', 'c', 'd']);
  });

  it('moves a key set again to the end without forgetting another', () => {
    const map = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    setBounded(map, 'a', 10, 3);
    assert.deepEqual(
      [...map.entries()],
      [
        ['b', 2],
        ['c', 3],
        ['a', 10],
      ],
    );
  });
});
