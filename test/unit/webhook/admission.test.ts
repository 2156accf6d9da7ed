import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestError } from '../../../src/main/errors.js';
import type { ImageReference } from '../../../src/main/oci/reference.js';
import { admit, type PinPolicy, type TagResolver } from '../../../src/main/webhook/admission.js';

const DIGEST = `sha256:${'12'.repeat(32)}`;

interface Answer {
  response: { uid: string; allowed: boolean; patch?: string; patchType?: string; warnings?: string[] };
}

// The pure admission logic with a fake resolver that answers at once: the timeout only bounds a test that
// goes wrong. The default (2 s) is what webhook.test.ts runs the real process at.
const policy = (over: Partial<PinPolicy> = {}): PinPolicy => ({
  mirrored: new Set(),
  filters: [],
  resolveTimeoutMs: 1000,
  ...over,
});

/** A resolver that knows `known` (registry/repository:tag → digest) and counts what it was asked. */
function resolver(known: Record<string, string>): TagResolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (ref: ImageReference): Promise<string> => {
    const key = `${ref.registry}/${ref.repository}:${ref.tag}`;
    asked.push(key);
    const digest = known[key];
    if (digest === undefined) throw new Error('answered 404');
    return digest;
  };
  return Object.assign(resolve, { asked });
}

function body(spec: unknown, request: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        object: { spec },
        ...request,
      },
    }),
  );
}

const patchOf = (answer: unknown): unknown[] => {
  const { response } = answer as Answer;
  return response.patch === undefined ? [] : JSON.parse(Buffer.from(response.patch, 'base64').toString());
};

describe('admit: what a Pod review is answered', () => {
  it('pins Docker Hub shorthand and keeps the implied tag readable', async () => {
    const resolve = resolver({ 'docker.io/library/nginx:latest': DIGEST });
    const answer = await admit(body({ containers: [{ name: 'a', image: 'nginx' }] }), resolve, policy());
    assert.deepEqual(patchOf(answer), [
      { op: 'replace', path: '/spec/containers/0/image', value: `nginx:latest@${DIGEST}` },
    ]);
  });

  it('asks once for a tag several containers name', async () => {
    const resolve = resolver({ 'ghcr.io/o/app:v1': DIGEST });
    const containers = [1, 2, 3].map((i) => ({ name: `c${i}`, image: 'ghcr.io/o/app:v1' }));
    const answer = await admit(body({ containers }), resolve, policy());
    assert.equal(patchOf(answer).length, 3);
    assert.deepEqual(resolve.asked, ['ghcr.io/o/app:v1']);
  });

  it('leaves pinned images, other registries and filtered tags alone, without asking', async () => {
    const resolve = resolver({});
    const containers = [
      { name: 'a', image: `ghcr.io/o/app@${DIGEST}` },
      { name: 'b', image: 'quay.io/o/app:v1' },
      { name: 'c', image: 'ghcr.io/o/dev:latest' },
      { name: 'd', image: 'NOT A REFERENCE' },
    ];
    const answer = (await admit(
      body({ containers }),
      resolve,
      policy({ mirrored: new Set(['ghcr.io']), filters: [/:latest$/] }),
    )) as Answer;
    assert.deepEqual(patchOf(answer), []);
    assert.equal(answer.response.warnings, undefined);
    assert.deepEqual(resolve.asked, []);
  });

  it('warns for each tag it could not resolve and pins the others', async () => {
    const resolve = resolver({ 'ghcr.io/o/app:v1': DIGEST });
    const containers = [
      { name: 'a', image: 'ghcr.io/o/app:v1' },
      { name: 'b', image: 'ghcr.io/o/app:gone' },
    ];
    const answer = (await admit(body({ containers }), resolve, policy())) as Answer;
    assert.equal(patchOf(answer).length, 1);
    assert.deepEqual(answer.response.warnings, ['shoal: ghcr.io/o/app:gone left unpinned: answered 404']);
  });

  it('answers within the resolve timeout when the resolver hangs', async () => {
    const hang: TagResolver = (_ref, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const started = Date.now();
    const answer = (await admit(
      body({ containers: [{ name: 'a', image: 'nginx:1' }] }),
      hang,
      // 50 ms, not the 2 s default, so the hang costs the unit suite nothing; the default is timed against a
      // real hanging shoal in webhook.test.ts.
      policy({ resolveTimeoutMs: 50 }),
    )) as Answer;
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(answer.response.warnings, ['shoal: nginx:1 left unpinned: not resolved within 50 ms']);
  });

  it('touches only ephemeral containers on their subresource, and nothing on other updates', async () => {
    const resolve = resolver({ 'docker.io/library/nginx:1': DIGEST });
    const spec = {
      containers: [{ name: 'a', image: 'nginx:1' }],
      ephemeralContainers: [{ name: 'e', image: 'nginx:1' }],
    };
    const debug = await admit(
      body(spec, { operation: 'UPDATE', subResource: 'ephemeralcontainers' }),
      resolve,
      policy(),
    );
    assert.deepEqual(
      patchOf(debug).map((op) => (op as { path: string }).path),
      ['/spec/ephemeralContainers/0/image'],
    );
    assert.deepEqual(patchOf(await admit(body(spec, { operation: 'UPDATE' }), resolve, policy())), []);
  });

  it('allows other kinds unchanged', async () => {
    const answer = (await admit(
      body({}, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }),
      resolver({}),
      policy(),
    )) as Answer;
    assert.deepEqual(answer.response, { uid: 'u1', allowed: true });
  });

  it('refuses malformed reviews with BadRequestError', async () => {
    const bad = [
      Buffer.from('{'),
      Buffer.from('null'),
      Buffer.from('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}'),
      Buffer.from('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}'),
      body({ containers: 'nginx' }),
      body({ containers: ['nginx'] }),
      Buffer.from(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { uid: 'u', kind: { group: '', kind: 'Pod' }, operation: 'CREATE' },
        }),
      ),
    ];
    for (const each of bad) {
      await assert.rejects(admit(each, resolver({}), policy()), BadRequestError, each.toString());
    }
  });
});
