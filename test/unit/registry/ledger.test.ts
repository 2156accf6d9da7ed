import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { createLogger, type Logger } from '../../../src/main/log/logger.js';
import type { CountedRequest, RequestRecorder } from '../../../src/main/metrics/requests.js';
import type { Digest } from '../../../src/main/oci/digest.js';
import { RequestLedger } from '../../../src/main/registry/ledger.js';
import type { Content, ContentSource } from '../../../src/main/store/store.js';

/** A logger that keeps what it was given. */
function recordingLog(): Logger & { lines: Array<{ fields: Record<string, unknown>; message?: string }> } {
  const lines: Array<{ fields: Record<string, unknown>; message?: string }> = [];
  const keep = (fields: Record<string, unknown>, message?: string): void => {
    lines.push(message === undefined ? { fields } : { fields, message });
  };
  const log = { lines, trace: keep, debug: keep, info: keep, warn: keep, error: keep, child: () => log };
  return log;
}

function recorder(): RequestRecorder & { counted: CountedRequest[] } {
  const counted: CountedRequest[] = [];
  return { counted, record: (request) => counted.push(request) };
}

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;

function content(source?: ContentSource): Content {
  const found: Content = {
    digest: DIGEST,
    size: 10,
    mediaType: 'application/octet-stream',
    open: async () => {
      throw new Error('not opened here');
    },
  };
  return source === undefined ? found : { ...found, source };
}

describe('RequestLedger', () => {
  const make = () => {
    const log = recordingLog();
    const counts = recorder();
    const ledger = new RequestLedger({ recorder: counts, log }, { mirroredRegistries: ['docker.io'] });
    return { log, counts, ledger };
  };

  it('classifies how each request ended, and where its answer came from', () => {
    const { counts, ledger } = make();
    const cases: Array<{
      fill: (trace: ReturnType<RequestLedger['begin']>['trace']) => void;
      status: number;
      cut?: boolean;
      want: Pick<CountedRequest, 'result' | 'source'>;
    }> = [
      { fill: (t) => (t.content = content()), status: 200, want: { result: 'hit', source: 'local' } },
      {
        fill: (t) => (t.content = content({ kind: 'peer', peer: 'p1' })),
        status: 206,
        want: { result: 'hit', source: 'peer' },
      },
      {
        fill: (t) => (t.content = content({ kind: 'upstream' })),
        status: 200,
        want: { result: 'hit', source: 'upstream' },
      },
      {
        fill: (t) => (t.content = content({ kind: 'owner', peer: 'p2' })),
        status: 200,
        cut: true,
        want: { result: 'cut', source: 'owner' },
      },
      { fill: () => undefined, status: 404, want: { result: 'miss', source: 'none' } },
      { fill: (t) => (t.filtered = true), status: 404, want: { result: 'filtered', source: 'none' } },
      { fill: () => undefined, status: 401, want: { result: 'error', source: 'none' } },
      // Found, but the answer still failed (a manifest whose bytes failed their check): nothing was served.
      { fill: (t) => (t.content = content()), status: 503, want: { result: 'error', source: 'none' } },
      { fill: (t) => (t.source = 'upstream'), status: 200, want: { result: 'hit', source: 'upstream' } },
    ];
    for (const { fill, status, cut } of cases) {
      const open = ledger.begin();
      fill(open.trace);
      open.end({ method: 'GET', status, bytes: 0, cut: cut ?? false });
    }
    assert.deepEqual(
      counts.counted.map(({ result, source }) => ({ result, source })),
      cases.map(({ want }) => want),
    );
  });

  it('says why a request missed, as the stores noted it, and says nothing of why for a hit', () => {
    const { log, ledger } = make();
    for (const status of [404, 200]) {
      const open = ledger.begin();
      open.trace.origin = {
        registry: 'docker.io',
        repository: 'a',
        kind: 'blobs',
        why: 'GET found no provider in 20 ms',
      };
      open.end({ method: 'GET', status, bytes: 0, cut: false });
    }
    const lines = log.lines.filter((line) => line.message === 'request');
    assert.deepEqual(
      lines.map((line) => [line.fields.result, line.fields.why]),
      [
        ['miss', 'GET found no provider in 20 ms'],
        ['hit', undefined],
      ],
    );
  });

  it('counts a request once, names only mirrored registries, and never counts probes', () => {
    const { counts, ledger } = make();
    const open = ledger.begin();
    open.trace.registry = 'docker.io';
    open.end({ method: 'GET', status: 404, bytes: 3, cut: false });
    open.end({ method: 'GET', status: 200, bytes: 3, cut: false });
    const other = ledger.begin();
    other.trace.registry = 'attacker.example';
    other.end({ method: 'GET', status: 404, bytes: 0, cut: false });
    const probe = ledger.begin();
    probe.trace.probe = true;
    probe.end({ method: 'GET', status: 200, bytes: 3, cut: false });
    assert.deepEqual(
      counts.counted.map((request) => request.registryLabel),
      ['docker.io', 'other'],
    );
  });

  it('logs one line per request, with the peer that sent the bytes, and keeps the last 100', () => {
    const { log, ledger } = make();
    for (let i = 0; i < 150; i++) {
      const open = ledger.begin();
      open.trace.kind = 'blob';
      open.trace.registry = 'docker.io';
      open.trace.repository = 'library/app';
      open.trace.reference = DIGEST;
      open.trace.content = content({ kind: 'peer', peer: `peer-${i}` });
      open.end({ method: 'GET', status: 200, bytes: i, cut: false });
    }
    const lines = log.lines.filter((line) => line.message === 'request');
    assert.equal(lines.length, 150);
    assert.deepEqual(lines[149]?.fields, {
      method: 'GET',
      registry: 'docker.io',
      repository: 'library/app',
      kind: 'blob',
      reference: DIGEST,
      digest: DIGEST,
      source: 'peer',
      peer: 'peer-149',
      status: 200,
      result: 'hit',
      bytes: 149,
      ms: lines[149]?.fields.ms,
      requester: 'client',
      member: undefined,
      why: undefined,
    });
    const recent = ledger.recent();
    assert.equal(recent.length, 100);
    assert.deepEqual([recent[0]?.bytes, recent[99]?.bytes], [149, 50], 'newest first, the oldest 50 dropped');
    assert.equal(ledger.lastHit?.bytes, 149);
  });

  it('logs a summary every 5 minutes: client requests and bytes by source, the hit ratio, members', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const { log, ledger } = make();
    ledger.start(() => 4);
    const finish = (status: number, kind: ContentSource['kind'] | undefined, member?: string): void => {
      const open = ledger.begin();
      if (kind !== undefined) open.trace.content = content({ kind });
      open.trace.member = member;
      open.end({ method: 'GET', status, bytes: 100, cut: false });
    };
    finish(200, 'local');
    finish(200, 'peer');
    finish(200, 'peer');
    finish(404, undefined);
    // A member's request is not the node's clients being served: left out of the summary.
    finish(200, 'local', 'member-1');
    t.mock.timers.tick(299_999);
    assert.equal(log.lines.filter((line) => line.message?.startsWith('summary')).length, 0);
    t.mock.timers.tick(1);
    const summaries = log.lines.filter((line) => line.message?.startsWith('summary'));
    assert.deepEqual(summaries[0]?.fields, {
      requests: { local: 1, peer: 2, none: 1 },
      bytes: { local: 100, peer: 200, none: 100 },
      hitRatio: 0.75,
      members: 4,
      windowMs: 300_000,
    });
    t.mock.timers.tick(300_000);
    const second = log.lines.filter((line) => line.message?.startsWith('summary'))[1];
    assert.deepEqual(second?.fields.requests, {}, 'each summary covers its own window');
    assert.equal(second?.fields.hitRatio, null);
    void ledger.stop();
    mock.reset();
  });

  it('writes each request line as pino would, field for field, without going through its serializer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-ledger-'));
    try {
      const file = join(dir, 'log');
      const log = createLogger('info', file).child({ component: 'request' });
      const ledger = new RequestLedger({ recorder: recorder(), log }, { mirroredRegistries: ['docker.io'] });
      const traces = [
        {
          kind: 'blob',
          registry: 'docker.io',
          repository: 'library/app',
          reference: DIGEST,
          peer: 'peer-1',
          status: 200,
        },
        {
          kind: 'manifest',
          registry: 'ghcr.io',
          repository: 'o/app',
          reference: 'v1',
          status: 404,
          why: 'HEAD found 2 providers; failed: p1 timeout, p2 "absent"',
        },
        // Nothing here needs escaping in practice (names follow the OCI grammar); were it to, it is escaped.
        {
          kind: 'tag_list',
          registry: 'docker.io',
          repository: 'a"b\\c\u00e9\u2028',
          status: 200,
          member: 'member-1',
        },
      ] as const;
      const ended: ReturnType<RequestLedger['begin']>[] = [];
      for (const t of traces) {
        const open = ledger.begin();
        Object.assign(open.trace, { kind: t.kind, registry: t.registry, repository: t.repository });
        if ('reference' in t) open.trace.reference = t.reference;
        if ('peer' in t) open.trace.content = content({ kind: 'peer', peer: t.peer });
        if ('member' in t) open.trace.member = t.member;
        if (t.kind === 'tag_list') open.trace.source = 'upstream';
        if ('why' in t)
          open.trace.origin = {
            registry: t.registry,
            repository: t.repository,
            kind: 'manifests',
            why: t.why,
          };
        open.end({ method: 'GET', status: t.status, bytes: 7, cut: false });
        ended.push(open);
        // The same record through pino's own serializer, for comparison.
        log.info({ ...open.record() }, 'request');
      }
      const lines = (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.equal(lines.length, 2 * traces.length);
      for (let i = 0; i < traces.length; i++) {
        const { time: fastTime, ...fast } = lines[2 * i] as Record<string, unknown>;
        const { time: pinoTime, ...viaPino } = lines[2 * i + 1] as Record<string, unknown>;
        assert.deepEqual(fast, viaPino);
        assert.equal(typeof fastTime, 'number');
        assert.equal(typeof pinoTime, 'number');
      }
      assert.equal(lines[0]?.peer, 'peer-1');
      assert.equal(lines[2]?.why, traces[1].why, 'a miss says why');
      assert.equal(lines[4]?.repository, 'a"b\\c\u00e9\u2028');
      assert.deepEqual(Object.keys(lines[0] ?? {}).slice(0, 4), ['level', 'time', 'app', 'component']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
