import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { type Digest, digestHex, parseDigest } from '../oci/digest.js';
import { isTag } from '../oci/reference.js';
import type { WritableStore } from './store.js';

interface LayoutIndex {
  manifests?: Array<{ digest?: string; annotations?: Record<string, string> }>;
}

export interface ImportResult {
  blobs: number;
  tags: string[];
}

/**
 * Copies an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) into a writable store, then
 * tags each manifest named in index.json by its `org.opencontainers.image.ref.name` annotation. Every blob
 * is hash-checked on the way in.
 */
export async function importOciLayout(
  store: WritableStore,
  layoutDir: string,
  target: { registry: string; repository: string },
): Promise<ImportResult> {
  let index: LayoutIndex;
  try {
    index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as LayoutIndex;
  } catch (cause) {
    throw new ConfigError(`${layoutDir} is not an OCI image layout (no readable index.json)`, { cause });
  }
  const files = await readdir(join(layoutDir, 'blobs', 'sha256'));
  // Every blob goes in before any tag, so a tag never names a manifest that is not there yet.
  for (const hex of files.sort()) {
    const digest: Digest = parseDigest(`sha256:${hex}`);
    await store.ingest(digest, createReadStream(join(layoutDir, 'blobs', 'sha256', digestHex(digest))));
  }
  const tags: string[] = [];
  for (const entry of index.manifests ?? []) {
    const tag = entry.annotations?.['org.opencontainers.image.ref.name'];
    if (entry.digest === undefined || tag === undefined || !isTag(tag)) continue;
    await store.tag(target.registry, target.repository, tag, parseDigest(entry.digest));
    tags.push(tag);
  }
  return { blobs: files.length, tags };
}
