import fc from 'fast-check';
import type { Digest } from '../../../src/main/oci/digest.js';
import type { PeerMessage } from '../../../src/main/routing/messages.js';

/** Cases per property in `npm test`; `SHOAL_PROPERTY_CASES` raises it for a longer run. */
export const CASES = Number(process.env.SHOAL_PROPERTY_CASES ?? 5000);
/**
 * The seed: fixed, so `npm test` checks the same cases every run (a property that fails on a new random
 * case would be a flaky test); `SHOAL_PROPERTY_SEED=random` (as `npm run test:chaos` sets) explores.
 */
const SEED = process.env.SHOAL_PROPERTY_SEED ?? '26';
fc.configureGlobal(SEED === 'random' ? {} : { seed: Number(SEED) });
if (SEED === 'random') console.log('# property seed: random (fast-check prints it with any counterexample)');

export interface Counted {
  cases: number;
}

/** Checks `predicate` on CASES values of `arbitrary`, adding them to `tally`. */
export function counted<T>(tally: Counted, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => void): void {
  fc.assert(
    fc.property(arbitrary, (value) => {
      predicate(value);
    }),
    { numRuns: CASES },
  );
  tally.cases += CASES;
}

const chars = (alphabet: string, min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...alphabet), minLength: min, maxLength: max });

const LOWER_DIGITS = 'abcdefghijklmnopqrstuvwxyz0123456789';
const HEX = '0123456789abcdef';

const nameComponent = fc
  .tuple(
    chars(LOWER_DIGITS, 1, 8),
    fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '--'), chars(LOWER_DIGITS, 1, 6)), {
      maxLength: 2,
    }),
  )
  .map(([head, rest]) => head + rest.map(([separator, part]) => separator + part).join(''));

const hostLabel = fc
  .tuple(chars(`${LOWER_DIGITS}ABCXYZ`, 1, 1), chars(`${LOWER_DIGITS}-AZ`, 0, 8), chars(LOWER_DIGITS, 1, 1))
  .map(([a, b, c]) => a + b + c);

/** Values each parser should accept, built from its grammar. */
export const arbitrary = {
  repository: fc.array(nameComponent, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
  tag: fc
    .tuple(chars(`${LOWER_DIGITS}ABZ_`, 1, 1), chars(`${LOWER_DIGITS}ABZ._-`, 0, 40))
    .map(([a, b]) => a + b),
  digest: chars(HEX, 64, 64).map((hex) => `sha256:${hex}` as Digest),
  registryHost: fc.oneof(
    fc
      .tuple(fc.array(hostLabel, { minLength: 1, maxLength: 4 }), fc.option(fc.nat({ max: 65535 })))
      .map(([labels, port]) => `${labels.join('.')}${port === null ? '' : `:${port}`}`),
    fc
      .tuple(fc.ipV4(), fc.option(fc.nat({ max: 65535 })))
      .map(([ip, port]) => `${ip}${port === null ? '' : `:${port}`}`),
    fc
      .tuple(fc.ipV6(), fc.option(fc.nat({ max: 65535 })))
      .map(([ip, port]) => `[${ip}]${port === null ? '' : `:${port}`}`),
  ),
  get imageName(): fc.Arbitrary<string> {
    return fc
      .tuple(this.registryHost, this.repository, this.tag)
      .map(([host, repository, tag]) => `${host}/${repository}:${tag}`);
  },
  get podImage(): fc.Arbitrary<string> {
    return fc
      .tuple(
        fc.option(fc.oneof(this.registryHost, fc.constant('localhost'), fc.constant('index.docker.io'))),
        this.repository,
        fc.option(this.tag),
        fc.option(this.digest),
      )
      .map(
        ([host, repository, tag, digest]) =>
          `${host === null ? '' : `${host}/`}${repository}${tag === null ? '' : `:${tag}`}${digest === null ? '' : `@${digest}`}`,
      );
  },
  realm: fc
    .tuple(fc.constantFrom('http://', 'https://', 'HTTPS://'), fc.string({ maxLength: 40 }))
    .map(([scheme, rest]) => `${scheme === 'HTTPS://' ? 'https://' : scheme}${rest}`),
  quotable: fc.string({ maxLength: 40 }),
  get notice(): fc.Arbitrary<PeerMessage> {
    return fc.oneof(
      fc
        .tuple(this.imageName, fc.integer({ min: 1, max: 2_000_000_000_000 }), fc.boolean())
        .map(([name, at, operator]) => {
          const slash = name.indexOf('/');
          const canonical = name.slice(0, slash).toLowerCase() + name.slice(slash);
          return {
            kind: 'tag-invalidated' as const,
            name: canonical,
            at,
            ...(operator ? { operator: true as const } : {}),
          };
        }),
      this.digest.map((digest) => ({ kind: 'corrupt' as const, digest })),
    );
  },
};

const TRICKY_SEGMENTS = [
  '',
  '.',
  '..',
  '%2e%2e',
  '%2F',
  '\\',
  '..\\..',
  'manifests',
  'blobs',
  'tags',
  'list',
  'referrers',
  'uploads',
  'sha256:',
  'SHA256:abc',
  '\u0000',
  '\u00e9',
  'a b',
  '?ns=x',
  '#',
];

/** Values an attacker (or a broken client) might send. */
export const hostile = {
  text: fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 300 })),
  v2Path: fc
    .array(fc.oneof(fc.constantFrom(...TRICKY_SEGMENTS), nameComponent, arbitrary.digest, arbitrary.tag), {
      maxLength: 8,
    })
    .map((segments) => `/v2/${segments.join('/')}`),
  digestLike: fc
    .tuple(
      fc.constantFrom('sha256', 'sha512', 'SHA256', 'md5', 'sha256+b64', 'sha-256', ''),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF=_-'), maxLength: 140 }),
    )
    .map(([algorithm, encoded]) => `${algorithm}:${encoded}`),
  range: fc
    .tuple(
      fc.constantFrom('bytes=', 'BYTES=', 'bytes =', 'items=', 'bytes=,', ''),
      fc.array(
        fc.oneof(
          fc.nat().map(String),
          fc.constantFrom('-', ',', ' ', '99999999999999999999', '0', '-0', '18446744073709551616', '1e3'),
        ),
        { maxLength: 6 },
      ),
    )
    .map(([unit, parts]) => unit + parts.join('')),
  challenge: fc
    .tuple(
      fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'Digest', '', 'Bearer,'),
      fc.array(
        fc.tuple(
          fc.constantFrom('realm', 'service', 'scope', 'REALM', 'error', ''),
          fc.oneof(
            fc.string({ maxLength: 30 }).map((value) => `"${value}"`),
            fc.string({ maxLength: 30 }),
            fc.constantFrom('"https://auth.example/token"', '"javascript:alert(1)"', '"file:///etc/passwd"'),
          ),
        ),
        { maxLength: 5 },
      ),
    )
    .map(([scheme, params]) => `${scheme} ${params.map(([key, value]) => `${key}=${value}`).join(',')}`),
  notice: fc
    .record(
      {
        kind: fc.constantFrom('tag-invalidated', 'corrupt', 'other', 7),
        name: fc.oneof(arbitrary.imageName, fc.string({ maxLength: 40 }), fc.integer()),
        at: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 5 }), fc.constant(null)),
        digest: fc.oneof(arbitrary.digest, fc.string({ maxLength: 70 })),
        operator: fc.oneof(fc.boolean(), fc.constant('true'), fc.constant(1)),
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
};
