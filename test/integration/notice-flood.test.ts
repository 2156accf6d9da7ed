import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/main/log/logger.js';
import { staticBootstrap } from '../../src/main/routing/bootstrap.js';
import { NOTICE_ALLOWANCE } from '../../src/main/routing/libp2p/notice-budget.js';
import { Libp2pRouter } from '../../src/main/routing/libp2p/router.js';
import type { PeerMessage } from '../../src/main/routing/messages.js';
import { TagBook } from '../../src/main/tags/tag-book.js';
import { TagInvalidator } from '../../src/main/tags/tag-invalidator.js';
import { waitFor } from '../harness/process.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

interface Member {
  router: Libp2pRouter;
  book: TagBook;
  invalidator: TagInvalidator;
}

/** A flood of fresh invalidations from one member to another, 16 at a time. */
class Flood {
  sent = 0;
  taken = 0;
  readonly done: Promise<void>;

  /** Sends up to `count` notices, stopping early at `until` (performance.now()). */
  constructor(
    from: Libp2pRouter,
    to: string,
    count: number,
    prefix: string,
    until = Number.POSITIVE_INFINITY,
  ) {
    const worker = async (): Promise<void> => {
      while (this.sent < count && performance.now() < until) {
        const notice: PeerMessage = {
          kind: 'tag-invalidated',
          name: `docker.io/flood/${prefix}:t${this.sent++}`,
          at: Date.now(),
        };
        if (await from.tell(to, notice, AbortSignal.timeout(2000))) this.taken++;
      }
    };
    this.done = Promise.all(Array.from({ length: 16 }, worker)).then(() => undefined);
  }
}

// Regression (security, issue 26): the notice allowance was per sending peer id, and a node passes every
// fresh invalidation on under its own id, so a flood into one node used up that node's allowance at every
// other: during a flood of 3 × 400 notices, `shoal invalidate` told 0 of 1 members in 2 of 3 tries. Fresh
// identities each had an allowance of their own (5 of them: 1,146 notices taken in 7 s). Real libp2p
// routers at their defaults, in this process.
describe('notice floods between members', { timeout: 120_000 }, () => {
  let dir: string;
  const members: Member[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-flood-notices');
  });
  after(async () => {
    await Promise.all(members.map((member) => member.router.stop()));
    await removeDir(dir);
  });

  it('the operator’s invalidation reaches every member while three others flood its node', async (t) => {
    const a = await joined('a');
    const b = await joined('b', a);
    const flooders = [await joined('m1', a), await joined('m2', a), await joined('m3', a)];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const floods = flooders.map((m, i) => new Flood(m.router, a.router.selfId, 400, `a${attempt}m${i}`));
      // The operator asks once the flood is well under way: 400 notices taken (each one passed on to every
      // member under a's id), or three quarters of it sent.
      const sent = () => floods.reduce((sum, each) => sum + each.sent, 0);
      const taken = () => floods.reduce((sum, each) => sum + each.taken, 0);
      await waitFor('the flood under way', async () => taken() >= 400 || sent() >= 900, 60_000);
      const name = `docker.io/library/app:try${attempt}`;
      const result = await a.invalidator.invalidate(name);
      assert.deepEqual(
        { members: result.members, told: result.told },
        { members: 4, told: 4 },
        `try ${attempt}: told ${result.told} of ${result.members}`,
      );
      assert.equal(await b.book.invalidate(name, result.at, 'member'), false, `b took try ${attempt}`);
      await Promise.all(floods.map((each) => each.done));
      t.diagnostic(`try ${attempt}: ${taken()} of ${sent()} flood notices taken`);
    }
  });

  it('fresh identities share one allowance', async (t) => {
    const target = members[0] as Member;
    const fresh = await Promise.all(['f1', 'f2', 'f3', 'f4', 'f5'].map((name) => joined(name, target)));
    // Each floods for 5 s, as fast as the target answers.
    const until = performance.now() + 5000;
    const floods = fresh.map(
      (member, i) => new Flood(member.router, target.router.selfId, 2000, `fresh${i}`, until),
    );
    await Promise.all(floods.map((each) => each.done));
    const seconds = (performance.now() - until + 5000) / 1000;
    const total = floods.reduce((sum, each) => sum + each.taken, 0);
    const sent = floods.reduce((sum, each) => sum + each.sent, 0);
    t.diagnostic(`${total} of ${sent} taken in ${seconds.toFixed(1)} s`);
    const bound = NOTICE_ALLOWANCE.member.burst + NOTICE_ALLOWANCE.member.perSecond * (seconds + 1);
    assert.ok(sent > bound, `the flood sent ${sent} notices, more than one allowance takes`);
    assert.ok(total <= bound, `${total} taken; one allowance allows ${bound}`);
    assert.ok(total > 0, 'newcomers are not shut out');
  });

  /** A member started in this process, joining through `through` (the first has none). */
  async function joined(name: string, through?: Member): Promise<Member> {
    const router = new Libp2pRouter(
      { log: silentLogger() },
      {
        host: '127.0.0.1',
        port: 0,
        dataDir: join(dir, name),
        registryPort: 6000 + members.length,
        ...(through === undefined ? {} : { bootstrap: staticBootstrap(through.router.addresses) }),
      },
    );
    await router.start();
    const book = new TagBook({});
    const member = { router, book, invalidator: new TagInvalidator({ book, router }) };
    members.push(member);
    if (through === undefined) return member;
    await waitFor(`${name} joins`, async () => router.ready(), 10_000);
    await waitFor(
      `${name} is a member of the node it joined through`,
      async () => through.router.members().includes(router.selfId),
      10_000,
    );
    return member;
  }
});
