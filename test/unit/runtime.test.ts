import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unsupportedRuntime } from '../../src/main/runtime.js';

describe('runtime check', () => {
  it('runs on Node 20.3 and later 20.x', () => {
    assert.equal(unsupportedRuntime({ node: '20.3.0', modules: '115' }, {}), undefined);
    assert.equal(unsupportedRuntime({ node: '20.20.2', modules: '115' }, {}), undefined);
  });

  it('names what it needs on any other Node', () => {
    for (const versions of [
      { node: '18.19.0', modules: '108' },
      { node: '22.1.0', modules: '127' },
      { node: '20.2.0', modules: '115' },
    ]) {
      assert.match(unsupportedRuntime(versions, {}) ?? '', /needs Node\.js 20\.3 .*found/);
    }
  });

  it('refuses the uWebSockets.js fallback rather than serving through it', () => {
    assert.match(
      unsupportedRuntime({ node: '20.20.2', modules: '115' }, { UWS_USE_FALLBACK: 'true' }) ?? '',
      /UWS_USE_FALLBACK/,
    );
    assert.equal(
      unsupportedRuntime({ node: '20.20.2', modules: '115' }, { UWS_USE_FALLBACK: '' }),
      undefined,
    );
  });
});
