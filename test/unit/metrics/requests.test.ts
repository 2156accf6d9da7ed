import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../../src/main/metrics/metrics.js';
import type { CountedRequest } from '../../../src/main/metrics/requests.js';

/** `name{labels} value` lines of an exposition, by their text before the value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

const request = (over: Partial<CountedRequest>): CountedRequest => ({
  registryLabel: 'docker.io',
  kind: 'blob',
  source: 'local',
  result: 'hit',
  requester: 'client',
  bytes: 1000,
  seconds: 0.02,
  firstByteSeconds: 0.003,
  longestWaitSeconds: 0.003,
  ...over,
});

describe('request metrics', () => {
  it('expose the counters, byte totals and histograms summed from what was recorded', async () => {
    const metrics = new Metrics();
    let inFlight = 2;
    const recorder = metrics.requests(() => inFlight);
    recorder.record(request({}), 1_000_000);
    recorder.record(request({ bytes: 3000, seconds: 0.2, longestWaitSeconds: 12 }), 2_000_000);
    recorder.record(request({ source: 'peer', bytes: 5000 }), 3_000_000);
    recorder.record(request({ requester: 'member', bytes: 7 }), 4_000_000);
    recorder.record(request({ kind: 'manifest', source: 'none', result: 'miss', bytes: 90 }), 5_000_000);
    inFlight = 1;
    const text = await metrics.render();
    const got = samples(text);
    const key = (labels: string) => `shoal_requests_total{${labels}}`;
    assert.equal(
      got.get(key('registry="docker.io",kind="blob",source="local",result="hit",requester="client"')),
      2,
    );
    assert.equal(
      got.get(key('registry="docker.io",kind="blob",source="peer",result="hit",requester="client"')),
      1,
    );
    assert.equal(
      got.get(key('registry="docker.io",kind="manifest",source="none",result="miss",requester="client"')),
      1,
    );
    assert.equal(got.get('shoal_served_bytes_total{source="local",requester="client"}'), 4000);
    assert.equal(got.get('shoal_served_bytes_total{source="local",requester="member"}'), 7);
    assert.equal(got.get('shoal_served_bytes_total{source="peer",requester="client"}'), 5000);
    // Cumulative buckets: 0.02 s falls under 0.025, 0.2 s under 0.25; both under +Inf.
    const bucket = (le: string) =>
      got.get(`shoal_request_duration_seconds_bucket{kind="blob",source="local",le="${le}"}`);
    assert.deepEqual(
      [bucket('0.01'), bucket('0.025'), bucket('0.1'), bucket('0.25'), bucket('+Inf')],
      [0, 2, 2, 3, 3],
    );
    assert.equal(got.get('shoal_request_duration_seconds_count{kind="blob",source="local"}'), 3);
    assert.ok(
      Math.abs((got.get('shoal_request_duration_seconds_sum{kind="blob",source="local"}') ?? 0) - 0.24) <
        1e-9,
    );
    assert.equal(got.get('shoal_response_size_bytes_count{kind="blob"}'), 4);
    assert.equal(got.get('shoal_requests_in_flight'), 1);
    // Last served: client hits only (the member's hit at 4e6 ms does not move it).
    assert.equal(got.get('shoal_last_success_timestamp_seconds{source="local"}'), 2000);
    assert.equal(got.get('shoal_last_success_timestamp_seconds{source="peer"}'), 3000);
    assert.match(text, /# TYPE shoal_requests_total counter/);
    assert.match(text, /# TYPE shoal_request_first_byte_seconds histogram/);
    // The one request that kept its client waiting 12 s for bytes is the one over 10 s.
    const waited = (le: string) =>
      got.get(`shoal_request_longest_wait_seconds_bucket{kind="blob",source="local",le="${le}"}`);
    assert.deepEqual([waited('0.005'), waited('10'), waited('30')], [2, 2, 3]);
  });
});
