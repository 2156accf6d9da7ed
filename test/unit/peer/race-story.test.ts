import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RaceStory } from '../../../src/main/peer/race.js';
import type { Provider } from '../../../src/main/routing/router.js';

async function* providers(ids: string[]): AsyncIterable<Provider> {
  for (const id of ids) yield { id, registry: `http://${id}` };
}

/** A lookup that finds nothing and never ends by itself: the race stops waiting for it. */
async function* silentLookup(): AsyncIterable<Provider> {
  yield* [];
  await new Promise(() => {});
}

// The `why` of a request that a race could not serve is what the operator reads at the default log level;
// it must say what happened, not what could have.
describe('RaceStory.why', () => {
  it('says the lookup ended when the DHT had no provider to give', async () => {
    const story = new RaceStory();
    for await (const _ of story.found(providers([]))) assert.fail('no provider');
    assert.match(story.why(500, 5000), /^found no provider: the lookup ended in \d+ ms$/);
  });

  it('names the wait when no provider came within it', async () => {
    const story = new RaceStory();
    // The race asks for a first provider and stops waiting: the lookup never ran out by itself.
    void story.found(silentLookup())[Symbol.asyncIterator]().next();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(story.why(500, 5000), 'found no provider in 500 ms');
  });

  it('counts the providers found, those set aside, and each failure', async () => {
    const story = new RaceStory();
    const found = story.found(providers(['a', 'b', 'c']));
    // The membership filter passes over `c` (set aside).
    async function* live(): AsyncIterable<Provider> {
      for await (const provider of found) if (provider.id !== 'c') yield provider;
    }
    for await (const _ of story.handed(live()));
    story.failed('a', 'refused');
    assert.equal(story.answered, true);
    assert.equal(
      story.why(500, 5000),
      'found 3 providers; 1 passed over (set aside); failed: a refused; 1 asked sent no answer in 5000 ms',
    );
  });

  it('does not count a timeout as an answer', () => {
    const story = new RaceStory();
    story.failed('a', 'timeout');
    assert.equal(story.answered, false);
  });
});
