import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unsupportedRuntime } from '../../src/main/runtime.js';

describe('runtime check', () => {
  it('runs on Node 22', () => {
    assert.equal(unsupportedRuntime({ node: '22.0.0', modules: '127' }), undefined);
    assert.equal(unsupportedRuntime({ node: '22.23.5', modules: '127' }), undefined);
  });

  it('names what it needs on any other Node, the end-of-life 20 included', () => {
    for (const versions of [
      { node: '18.19.0', modules: '108' },
      { node: '20.20.2', modules: '115' },
      { node: '24.1.0', modules: '137' },
    ]) {
      assert.match(unsupportedRuntime(versions) ?? '', /needs Node\.js 22 LTS \(found /);
    }
  });

  it('is what the suite runs on', () => {
    // npm puts node_modules/.bin first on PATH, so `npm test` runs on the Node 22 that `npm ci` installed.
    assert.equal(unsupportedRuntime(process.versions), undefined, `running on ${process.version}`);
  });
});
