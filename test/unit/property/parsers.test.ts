import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { RangeNotSatisfiableError, ShoalError } from '../../../src/main/errors.js';
import { isDigest, parseDigest } from '../../../src/main/oci/digest.js';
import { parsePullPath } from '../../../src/main/oci/path.js';
import { parseRange } from '../../../src/main/oci/range.js';
import {
  canonicalImageName,
  parseImageReference,
  parseRegistryHost,
  parseRepository,
} from '../../../src/main/oci/reference.js';
import { parseChallenge } from '../../../src/main/pullthrough/upstream-auth.js';
import { decodeMessage, encodeMessage, type PeerMessage } from '../../../src/main/routing/messages.js';
import { arbitrary, type Counted, counted, hostile } from './arbitraries.js';

// Property tests of every parser that reads what another party wrote (issue 26): for any input, a parser
// answers or refuses with a coded error (never another exception, never a hang), and what it accepts means
// what the grammar says. `CASES` runs per property; the total is printed at the end.

const tally: Counted = { cases: 0 };
after(() => console.log(`# property cases run: ${tally.cases}`));

/** Runs `body`; an exception it throws must be a ShoalError (a coded answer), whose status is 4xx. */
function refusesCleanly(body: () => unknown): void {
  try {
    body();
  } catch (err) {
    assert.ok(err instanceof ShoalError, `not a coded error: ${String(err)}`);
    assert.ok(err.status >= 400 && err.status < 500, `${err.code} answers ${err.status}`);
  }
}

describe('property: /v2 paths', () => {
  it('any path is a route or a 4xx, never another error', () => {
    counted(tally, fc.oneof(hostile.text, hostile.v2Path), (path) =>
      refusesCleanly(() => parsePullPath(path)),
    );
  });

  it('a well-formed manifest, blob or tags path means exactly what it names', () => {
    counted(
      tally,
      fc.tuple(arbitrary.repository, arbitrary.tag, arbitrary.digest),
      ([repository, tag, digest]) => {
        assert.deepEqual(parsePullPath(`/v2/${repository}/manifests/${tag}`), {
          kind: 'manifest',
          repository,
          tag,
        });
        assert.deepEqual(parsePullPath(`/v2/${repository}/manifests/${digest}`), {
          kind: 'manifest',
          repository,
          digest,
        });
        assert.deepEqual(parsePullPath(`/v2/${repository}/blobs/${digest}`), {
          kind: 'blob',
          repository,
          digest,
        });
        assert.deepEqual(parsePullPath(`/v2/${repository}/tags/list`), { kind: 'tags', repository });
      },
    );
  });

  it('no accepted path names a repository with a dot segment, a percent or a backslash', () => {
    counted(tally, hostile.v2Path, (path) => {
      let route: ReturnType<typeof parsePullPath> | undefined;
      refusesCleanly(() => {
        route = parsePullPath(path);
      });
      if (route === undefined || route.kind === 'ping') return;
      assert.doesNotMatch(route.repository, /(^|\/)\.\.?(\/|$)|%|\\/);
    });
  });
});

describe('property: references and registry hosts', () => {
  it('a repository name is returned unchanged or refused', () => {
    counted(tally, fc.oneof(hostile.text, arbitrary.repository), (name) =>
      refusesCleanly(() => assert.equal(parseRepository(name), name)),
    );
  });

  it('an image name is canonical once canonicalised', () => {
    counted(tally, fc.oneof(hostile.text, arbitrary.imageName), (name) =>
      refusesCleanly(() => {
        const canonical = canonicalImageName(name);
        assert.equal(canonicalImageName(canonical), canonical);
      }),
    );
  });

  it('a pod’s image reference parses to a valid one or to nothing, and a pinned one parses back', () => {
    counted(
      tally,
      fc.tuple(fc.oneof(hostile.text, arbitrary.podImage), arbitrary.digest),
      ([image, digest]) => {
        const ref = parseImageReference(image);
        if (ref === undefined) return;
        assert.equal(parseRepository(ref.repository), ref.repository);
        assert.equal(parseRegistryHost(ref.registry), ref.registry);
        if (ref.digest !== undefined) return;
        const pinned = parseImageReference(`${image}${ref.tagImplied ? `:${ref.tag}` : ''}@${digest}`);
        assert.deepEqual(pinned, { ...ref, tagImplied: false, digest });
      },
    );
  });

  it('ns names a host with no path, credentials or spaces, or is refused', () => {
    counted(tally, fc.oneof(hostile.text, arbitrary.registryHost), (ns) =>
      refusesCleanly(() => {
        const host = parseRegistryHost(ns);
        assert.doesNotMatch(host, /[/@\s?#%\\]/);
        assert.equal(parseRegistryHost(host), host);
      }),
    );
  });
});

describe('property: digests', () => {
  it('parseDigest and isDigest agree, and only canonical sha256/sha512 digests pass', () => {
    counted(tally, fc.oneof(hostile.text, arbitrary.digest, hostile.digestLike), (text) => {
      let accepted = false;
      refusesCleanly(() => {
        parseDigest(text);
        accepted = true;
      });
      assert.equal(isDigest(text), accepted);
      if (accepted) assert.match(text, /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/);
    });
  });
});

describe('property: Range', () => {
  it('any header gives the whole body, a range inside the blob, or a 416 naming the size', () => {
    counted(
      tally,
      fc.tuple(fc.oneof(hostile.text, hostile.range), fc.nat({ max: 2 ** 40 })),
      ([header, size]) => {
        try {
          const range = parseRange(header, size);
          if (range === undefined) return;
          assert.ok(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end));
          assert.ok(range.start >= 0 && range.start <= range.end && range.end < size, JSON.stringify(range));
        } catch (err) {
          assert.ok(err instanceof RangeNotSatisfiableError, String(err));
        }
      },
    );
  });

  it('bytes=a-b inside the blob is exactly [a, b]', () => {
    const inside = fc
      .nat({ max: 2 ** 40 })
      .chain((size) => fc.tuple(fc.constant(size + 1), fc.nat({ max: size }), fc.nat({ max: size })));
    counted(tally, inside, ([size, x, y]) => {
      const [start, end] = x <= y ? [x, y] : [y, x];
      assert.deepEqual(parseRange(`bytes=${start}-${end}`, size), { start, end });
    });
  });
});

describe('property: WWW-Authenticate', () => {
  it('any header is a challenge or nothing; a bearer realm is always an http(s) URL', () => {
    counted(tally, fc.oneof(hostile.text, hostile.challenge), (header) => {
      const challenge = parseChallenge(header);
      if (challenge?.scheme === 'bearer') assert.match(challenge.realm, /^https?:\/\//);
    });
  });

  it('a bearer challenge gives back its realm and service, quoted-pair escapes undone', () => {
    counted(
      tally,
      fc.tuple(arbitrary.realm, arbitrary.quotable, arbitrary.quotable),
      ([realm, service, scope]) => {
        const quote = (value: string): string => `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
        const header = `Bearer realm=${quote(realm)},service=${quote(service)},scope=${quote(scope)}`;
        assert.deepEqual(parseChallenge(header), { scheme: 'bearer', realm, service });
      },
    );
  });
});

describe('property: notices between members', () => {
  it('any line decodes to a valid notice or to nothing', () => {
    counted(tally, fc.oneof(hostile.text, hostile.notice), (line) => {
      const message = decodeMessage(line, 2_000_000_000_000);
      if (message?.kind === 'tag-invalidated') assert.equal(canonicalImageName(message.name), message.name);
      if (message?.kind === 'corrupt') assert.ok(isDigest(message.digest));
    });
  });

  it('every valid notice survives encoding', () => {
    counted(tally, arbitrary.notice, (message: PeerMessage) => {
      const line = new TextDecoder().decode(encodeMessage(message)).trimEnd();
      assert.deepEqual(decodeMessage(line, 2_000_000_000_000), message);
    });
  });
});
