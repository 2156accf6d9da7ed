import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResolveWait } from '../../../src/main/peer/resolve-wait.js';

describe('ResolveWait', () => {
  it('waits up to the cap until it has seen enough lookups to judge', () => {
    const wait = new ResolveWait({}, { floorMs: 20, capMs: 500 });
    assert.equal(wait.ms, 500);
    for (let i = 0; i < 7; i++) wait.record(1);
    assert.equal(wait.ms, 500);
    wait.record(undefined);
    assert.equal(wait.ms, 500, 'a lookup that found nobody is no sample');
    wait.record(1);
    assert.equal(wait.ms, 20, 'fast lookups: the floor');
  });

  it('follows a few times the p99 of recent lookups, within floor and cap', () => {
    const wait = new ResolveWait({}, { floorMs: 20, capMs: 500 });
    for (let i = 0; i < 100; i++) wait.record(i < 98 ? 5 : 40);
    assert.equal(wait.ms, 120);
    for (let i = 0; i < 128; i++) wait.record(400);
    assert.equal(wait.ms, 500);
    for (let i = 0; i < 128; i++) wait.record(2);
    assert.equal(wait.ms, 20);
  });

  it('never goes below a floor set above the cap', () => {
    const wait = new ResolveWait({}, { floorMs: 800, capMs: 500 });
    for (let i = 0; i < 10; i++) wait.record(1);
    assert.equal(wait.ms, 800);
  });
});
