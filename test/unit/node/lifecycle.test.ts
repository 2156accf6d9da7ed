import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/main/log/logger.js';
import { Lifecycle } from '../../../src/main/node/lifecycle.js';

describe('Lifecycle', () => {
  it('stops parts latest first, goes on past one that fails, and stops nothing twice', async () => {
    const stopped: string[] = [];
    const life = new Lifecycle(createLogger('silent'));
    life.started('metrics', { stop: () => stopped.push('metrics') });
    life.started('store', {
      stop: async () => {
        stopped.push('store');
        throw new Error('disk gone');
      },
    });
    life.onStop('listener', () => stopped.push('listener'));
    await life.stopAll();
    assert.deepEqual(stopped, ['listener', 'store', 'metrics']);
    await life.stopAll();
    assert.equal(stopped.length, 3);
  });
});
