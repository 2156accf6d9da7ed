import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  referencedBlobs,
  sniffManifestMediaType,
} from '../../../src/main/oci/media-types.js';

const sniff = (doc: unknown): string | undefined => sniffManifestMediaType(Buffer.from(JSON.stringify(doc)));

describe('sniffManifestMediaType', () => {
  it('uses the mediaType field', () => {
    assert.equal(
      sniff({ schemaVersion: 2, mediaType: MEDIA_TYPE_DOCKER_MANIFEST, config: {}, layers: [] }),
      MEDIA_TYPE_DOCKER_MANIFEST,
    );
  });
  it('recognises OCI shapes without mediaType', () => {
    assert.equal(sniff({ schemaVersion: 2, manifests: [] }), MEDIA_TYPE_OCI_INDEX);
    assert.equal(sniff({ schemaVersion: 2, config: {}, layers: [] }), MEDIA_TYPE_OCI_MANIFEST);
  });
  it('does not take configs, other JSON or binary for manifests', () => {
    assert.equal(
      sniff({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
      undefined,
    );
    assert.equal(sniff({ schemaVersion: 1, fsLayers: [] }), undefined);
    assert.equal(
      sniff({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.config.v1+json' }),
      undefined,
    );
    assert.equal(sniffManifestMediaType(Buffer.from([0x1f, 0x8b, 0x08])), undefined);
    assert.equal(sniffManifestMediaType(Buffer.from('{not json')), undefined);
    assert.equal(sniffManifestMediaType(Buffer.alloc(0)), undefined);
  });
});

describe('referencedBlobs', () => {
  const d = (c: string) => `sha256:${c.repeat(64)}`;
  const manifest = (extra: Record<string, unknown> = {}) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: { digest: d('c') },
        layers: [{ digest: d('1') }, { digest: d('2') }, { digest: 'not-a-digest' }],
        ...extra,
      }),
    );

  it('names the config and the layers of an image manifest, and nothing that is not a digest', () => {
    assert.deepEqual(referencedBlobs(manifest(), MEDIA_TYPE_OCI_MANIFEST), [d('c'), d('1'), d('2')]);
  });

  it('names nothing for an index, a non-manifest or bytes that do not parse', () => {
    assert.deepEqual(referencedBlobs(manifest(), MEDIA_TYPE_OCI_INDEX), []);
    assert.deepEqual(referencedBlobs(Buffer.from('{oops'), MEDIA_TYPE_OCI_MANIFEST), []);
    assert.deepEqual(referencedBlobs(Buffer.from('null'), MEDIA_TYPE_OCI_MANIFEST), []);
  });
});
