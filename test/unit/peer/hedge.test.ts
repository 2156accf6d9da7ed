import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hedgedRace } from '../../../src/main/peer/hedge.js';
import type { Provider } from '../../../src/main/routing/router.js';

const provider = (id: string): Provider => ({ id, registry: `http://${id}` });

async function* providers(ids: string[], delayMs = 0): AsyncIterable<Provider> {
  for (const id of ids) {
    if (delayMs > 0) await sleep(delayMs);
    yield provider(id);
  }
}

type Behaviour = { ms: number; ok: boolean } | 'hang';

/** An attempt that behaves per provider, recording starts and aborts. */
function scripted(behaviour: Record<string, Behaviour>) {
  const started: string[] = [];
  const aborted: string[] = [];
  const attempt = (p: Provider, signal: AbortSignal): Promise<string> => {
    started.push(p.id);
    signal.addEventListener('abort', () => aborted.push(p.id));
    const plan = behaviour[p.id] ?? { ms: 0, ok: false };
    if (plan === 'hang')
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    return sleep(plan.ms).then(() => {
      if (!plan.ok) throw new Error(`${p.id} failed`);
      return `from ${p.id}`;
    });
  };
  return { attempt, started, aborted };
}

const options = (overrides: Partial<Parameters<typeof hedgedRace>[2]> = {}) => ({
  maxAttempts: 3,
  hedgeDelayMs: 50,
  firstProviderTimeoutMs: 200,
  signal: new AbortController().signal,
  ...overrides,
});

describe('hedgedRace', () => {
  it('uses the first provider when it answers quickly, starting no other', async () => {
    const run = scripted({ a: { ms: 5, ok: true }, b: { ms: 5, ok: true } });
    const won = await hedgedRace(providers(['a', 'b']), run.attempt, options());
    assert.equal(won?.result, 'from a');
    assert.deepEqual(run.started, ['a']);
  });

  it('hedges to the next provider when the first is slow, and aborts the loser', async () => {
    const run = scripted({ a: 'hang', b: { ms: 5, ok: true } });
    const won = await hedgedRace(providers(['a', 'b']), run.attempt, options({ hedgeDelayMs: 30 }));
    assert.equal(won?.result, 'from b');
    assert.deepEqual(run.started, ['a', 'b']);
    assert.deepEqual(run.aborted, ['a']);
  });

  it('moves on at once when a provider fails, without waiting for the hedge delay', async () => {
    const run = scripted({ a: { ms: 1, ok: false }, b: { ms: 1, ok: true } });
    const started = Date.now();
    const won = await hedgedRace(providers(['a', 'b']), run.attempt, options({ hedgeDelayMs: 5000 }));
    assert.equal(won?.result, 'from b');
    assert.ok(Date.now() - started < 1000);
  });

  it('gives up quickly when no provider is found in time', async () => {
    const run = scripted({});
    const started = Date.now();
    const won = await hedgedRace(
      providers(['late'], 2000),
      run.attempt,
      options({ firstProviderTimeoutMs: 50 }),
    );
    assert.equal(won, undefined);
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(run.started, []);
  });

  it('tries at most maxAttempts providers', async () => {
    const run = scripted({});
    const won = await hedgedRace(providers(['a', 'b', 'c', 'd']), run.attempt, options({ maxAttempts: 2 }));
    assert.equal(won, undefined);
    assert.deepEqual(run.started, ['a', 'b']);
  });

  it('ends when every provider failed and the search is exhausted', async () => {
    const run = scripted({});
    assert.equal(await hedgedRace(providers(['a']), run.attempt, options()), undefined);
    assert.equal(await hedgedRace(providers([]), run.attempt, options()), undefined);
  });

  it('stops when the caller aborts', async () => {
    const caller = new AbortController();
    const run = scripted({ a: 'hang' });
    setTimeout(() => caller.abort(), 20);
    const won = await hedgedRace(
      providers(['a']),
      run.attempt,
      options({ signal: caller.signal, hedgeDelayMs: 5000 }),
    );
    assert.equal(won, undefined);
    assert.deepEqual(run.aborted, ['a']);
  });
});
