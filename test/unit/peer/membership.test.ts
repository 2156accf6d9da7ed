import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Membership } from '../../../src/main/peer/membership.js';

function membership(members: string[], init = {}) {
  const counted: string[] = [];
  const view = new Membership(
    {
      router: { selfId: 'self', members: () => members },
      setAside: { inc: (l) => counted.push(l.reason ?? '') },
    },
    { failedMs: 50, corruptMs: 10_000, ownerMs: 50, ...init },
  );
  return { view, counted };
}

describe('Membership (the one view of peer health)', () => {
  it('keeps sources and the electorate apart: a peer that failed a fetch still owns its digests', () => {
    const { view, counted } = membership(['a', 'b', 'c']);
    view.setAside('a', 'failed');
    view.setAside('b', 'corrupt');
    assert.equal(view.usable('a'), false);
    assert.equal(view.usable('b'), false);
    assert.equal(view.usable('c'), true);
    assert.deepEqual(view.electorate(), ['self', 'a', 'b', 'c']);
    view.setAside('c', 'owner');
    assert.deepEqual(view.electorate(), ['self', 'a', 'b']);
    assert.equal(view.usable('c'), true, 'an owner that broke off is still asked for what it holds');
    assert.deepEqual(counted, ['failed', 'corrupt', 'owner']);
    assert.equal(view.size, 3);
  });

  it('lets a setting aside expire, and never cuts a longer one short', () => {
    const { view, counted } = membership(['a', 'b']);
    const now = Date.now();
    view.setAside('a', 'corrupt');
    view.setAside('a', 'failed');
    assert.deepEqual(counted, ['corrupt'], 'the shorter one changed nothing');
    view.setAside('b', 'failed');
    assert.equal(view.usable('b', now + 40), false);
    assert.equal(view.usable('b', now + 1000), true);
    assert.equal(view.usable('a', now + 1000), false, 'corrupt lasts its own, longer time');
    view.setAside('b', 'owner');
    assert.deepEqual(view.electorate(now + 1000), ['self', 'a', 'b']);
  });

  // Regression (issue 26): a holder restarted after a kill was still set aside while the other holder was
  // down, and the request missed although it was up: failed peers now come last instead of never.
  it('puts peers that failed after every usable provider, and leaves out those that sent corrupt bytes', async () => {
    const { view } = membership(['a', 'b', 'c']);
    view.setAside('a', 'failed');
    view.setAside('c', 'corrupt');
    async function* providers() {
      yield { id: 'a', registry: 'http://a' };
      yield { id: 'b', registry: 'http://b' };
      yield { id: 'c', registry: 'http://c' };
    }
    const seen: string[] = [];
    for await (const provider of view.live(providers())) seen.push(provider.id);
    assert.deepEqual(seen, ['b', 'a']);
    // A body being resumed is never resumed from the peer it broke off from, even as a last resort.
    const resumed: string[] = [];
    for await (const provider of view.live(providers(), 'a')) resumed.push(provider.id);
    assert.deepEqual(resumed, ['b']);
  });

  it('reads who is up from the router each time', () => {
    const members = ['a'];
    const { view } = membership(members);
    assert.deepEqual(view.electorate(), ['self', 'a']);
    members.push('late');
    assert.deepEqual(view.electorate(), ['self', 'a', 'late']);
  });
});
