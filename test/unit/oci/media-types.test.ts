import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
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
