import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inTurn } from '../../../src/main/util/in-turn.js';

describe('inTurn', () => {
  it('yields each value as it settles, not in the order given', async () => {
    let release: (value: string) => void = () => undefined;
    const late = new Promise<string>((resolve) => {
      release = resolve;
    });
    const seen: string[] = [];
    for await (const value of inTurn([late, Promise.resolve('now'), Promise.resolve('soon')])) {
      seen.push(value);
      if (seen.length === 2) release('late');
    }
    assert.deepEqual(seen, ['now', 'soon', 'late']);
  });

  it('ends at once when given nothing', async () => {
    for await (const _ of inTurn([])) assert.fail('nothing to yield');
  });
});
