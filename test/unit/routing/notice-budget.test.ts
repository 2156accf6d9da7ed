import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NEWCOMER_MS,
  NOTICE_ALLOWANCE,
  NoticeBudget,
} from '../../../src/main/routing/libp2p/notice-budget.js';

/** How many of `count` notices of `kind` from `peer` the budget takes at one instant. */
function taken(budget: NoticeBudget, peer: string, kind: 'operator' | 'member', count: number): number {
  let took = 0;
  for (let i = 0; i < count; i++) if (budget.take(peer, kind)) took++;
  return took;
}

describe('NoticeBudget: allowances for notices between members', () => {
  // Regression (issue 26): a flood of relays used up the sender's one allowance at every receiver, so the
  // operator's invalidation through that node was refused.
  it('keeps the operator’s allowance apart from relays', () => {
    let now = 0;
    const budget = new NoticeBudget(() => now);
    now = NEWCOMER_MS; // both peers first heard at 0: members by now
    budget.take('a', 'member');
    now = 2 * NEWCOMER_MS;
    assert.equal(taken(budget, 'a', 'member', 1000), NOTICE_ALLOWANCE.member.burst);
    assert.equal(taken(budget, 'a', 'operator', 10), 10);
  });

  // Regression (issue 26): 5 fresh identities got 1,146 notices accepted in 7 s, each with its own allowance.
  it('lets newcomers share one allowance, and gives a member its own once it has been known a while', () => {
    let now = 1000;
    const budget = new NoticeBudget(() => now);
    let all = 0;
    for (const peer of ['f1', 'f2', 'f3', 'f4', 'f5']) all += taken(budget, peer, 'member', 400);
    assert.equal(all, NOTICE_ALLOWANCE.member.burst);
    now += NEWCOMER_MS;
    assert.equal(taken(budget, 'f1', 'member', 400), NOTICE_ALLOWANCE.member.burst);
    assert.equal(taken(budget, 'f2', 'member', 400), NOTICE_ALLOWANCE.member.burst);
    // A newcomer heard now still shares, with a full shared allowance saved up meanwhile.
    assert.equal(taken(budget, 'f6', 'member', 400), NOTICE_ALLOWANCE.member.burst);
  });

  it('refills at its rate, up to its burst', () => {
    let now = 0;
    const budget = new NoticeBudget(() => now);
    assert.equal(taken(budget, 'a', 'operator', 1000), NOTICE_ALLOWANCE.operator.burst);
    now += 1000;
    assert.equal(taken(budget, 'a', 'operator', 1000), NOTICE_ALLOWANCE.operator.perSecond);
    now += 3_600_000;
    assert.equal(taken(budget, 'a', 'operator', 1000), NOTICE_ALLOWANCE.operator.burst);
  });
});
