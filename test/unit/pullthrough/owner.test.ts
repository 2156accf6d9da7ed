import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { OwnerElection } from '../../../src/main/pullthrough/owner.js';

const digests = Array.from(
  { length: 2000 },
  (_, i) => `sha256:${createHash('sha256').update(String(i)).digest('hex')}`,
);
const members = ['12D3KooWAlpha', '12D3KooWBravo', '12D3KooWCharlie', '12D3KooWDelta', '12D3KooWEcho'];

describe('OwnerElection', () => {
  let election: OwnerElection;
  before(async () => {
    election = await OwnerElection.create();
  });

  it('gives every node the same owner whatever order it lists the members in', () => {
    for (const digest of digests.slice(0, 200)) {
      assert.equal(election.owner(digest, members), election.owner(digest, [...members].reverse()));
    }
    assert.equal(election.owner(digests[0] as string, []), undefined);
  });

  it('spreads digests evenly over the members', () => {
    const counts = new Map<string, number>();
    for (const digest of digests) {
      const owner = election.owner(digest, members) as string;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const member of members) {
      const share = (counts.get(member) ?? 0) / digests.length;
      assert.ok(share > 0.15 && share < 0.25, `${member} owns ${(share * 100).toFixed(1)}%`);
    }
  });

  it('moves only the departed member’s digests when a member leaves', () => {
    const remaining = members.filter((member) => member !== '12D3KooWCharlie');
    for (const digest of digests) {
      const before = election.owner(digest, members);
      const after = election.owner(digest, remaining);
      if (before !== '12D3KooWCharlie') assert.equal(after, before, digest);
    }
  });
});
