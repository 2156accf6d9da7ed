import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { parse } from 'smol-toml';
import { hostTables, renderHostsToml } from '../../../src/main/containerd/hosts.js';
import { BadRequestError } from '../../../src/main/errors.js';
import { parseImageReference } from '../../../src/main/oci/reference.js';
import { admit } from '../../../src/main/webhook/admission.js';
import { arbitrary, CASES, type Counted, counted, hostile } from './arbitraries.js';

// Property tests of the inputs shoal takes from the node and the API server (issue 26): an existing
// hosts.toml it keeps tables of, and AdmissionReview bodies. The total is printed at the end.

const tally: Counted = { cases: 0 };
after(() => console.log(`# property cases run: ${tally.cases}`));

const SHOAL = new URL('http://127.0.0.1:5000');
const INIT = { mirrorTargets: [SHOAL], resolveTags: true, dialTimeoutMs: 200 };

/** An existing hosts.toml: valid host tables (one may be shoal's own), around text of any kind. */
const existingHosts = fc.oneof(
  hostile.text,
  fc
    .array(
      fc.tuple(
        fc.oneof(
          arbitrary.registryHost.map((host) => `https://${host}`),
          fc.constant(SHOAL.origin),
          fc.string({ maxLength: 20 }),
        ),
        fc.subarray(['pull', 'resolve', 'push']),
        fc.option(fc.string({ maxLength: 20 })),
      ),
      { maxLength: 4 },
    )
    .map((tables) =>
      [
        'server = "https://registry.example"',
        ...tables.map(
          ([url, capabilities, extra]) =>
            `[host.${JSON.stringify(url)}]\n  capabilities = ${JSON.stringify(capabilities)}${extra === null ? '' : `\n${extra}`}`,
        ),
      ].join('\n'),
    ),
);

describe('property: hosts.toml input', () => {
  it('whatever the existing file holds, the written one is valid TOML with shoal’s mirror first', () => {
    counted(tally, fc.tuple(existingHosts, fc.boolean()), ([existing, named]) => {
      const text = renderHostsToml(
        named ? new URL('https://registry.example') : undefined,
        INIT,
        hostTables(existing),
      );
      const hosts = (parse(text) as { host?: Record<string, unknown> }).host ?? {};
      assert.ok(SHOAL.origin in hosts);
      // containerd tries mirrors in file order (a JS object would put a key like "0" first).
      assert.equal(/^\[host\."([^"]*)"\]/m.exec(text)?.[1], SHOAL.origin);
    });
  });
});

const digest = `sha256:${'d'.repeat(64)}`;
const policy = { mirrored: new Set<string>(), filters: [], resolveTimeoutMs: 1000 };

/** An AdmissionReview of a pod, with containers of any image (and sometimes any shape). */
const review = fc
  .record({
    uid: fc.oneof(fc.uuid(), fc.string({ maxLength: 5 }), fc.constant(7)),
    operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT'),
    subResource: fc.constantFrom(undefined, '', 'ephemeralcontainers', 'status'),
    kind: fc.constantFrom({ group: '', kind: 'Pod' }, { group: 'apps', kind: 'Deployment' }, 'Pod'),
    containers: fc.array(
      fc.oneof(
        fc.record({ name: fc.string({ maxLength: 5 }), image: fc.oneof(arbitrary.podImage, hostile.text) }),
        fc.record({ image: fc.integer() }),
        fc.constant(null),
      ),
      { maxLength: 4 },
    ),
    lists: fc.subarray(['containers', 'initContainers', 'ephemeralContainers']),
  })
  .map(({ uid, operation, subResource, kind, containers, lists }) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      operation,
      subResource,
      kind,
      object: { spec: Object.fromEntries(lists.map((list) => [list, containers])) },
    },
  }));

describe('property: AdmissionReview bodies', () => {
  it('any body gets an answer for its uid or a 400; every patch pins the image it replaces', async () => {
    const bodies = fc.oneof(
      review.map((value) => Buffer.from(JSON.stringify(value))),
      fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? '')),
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        let answer: { response: { uid: unknown; allowed: boolean; patch?: string } };
        try {
          answer = (await admit(body, async () => digest, policy)) as typeof answer;
        } catch (err) {
          assert.ok(err instanceof BadRequestError, String(err));
          return;
        }
        const sent = JSON.parse(body.toString('utf8')) as {
          request: { uid: unknown; object: { spec: Record<string, { image: string }[]> } };
        };
        assert.equal(answer.response.uid, sent.request.uid);
        assert.equal(answer.response.allowed, true);
        if (answer.response.patch === undefined) return;
        const patch = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString()) as {
          op: string;
          path: string;
          value: string;
        }[];
        for (const op of patch) {
          const [, , list, index] = op.path.split('/');
          const before = sent.request.object.spec[list as string]?.[Number(index)]?.image as string;
          const was = parseImageReference(before);
          const now = parseImageReference(op.value);
          assert.equal(op.op, 'replace');
          assert.deepEqual({ ...now, tagImplied: was?.tagImplied }, { ...was, digest });
        }
      }),
      { numRuns: CASES },
    );
    tally.cases += CASES;
  });
});
