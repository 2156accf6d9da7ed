import { createHash } from 'node:crypto';
import { type Digest, parseDigest } from '../../src/main/oci/digest.js';
import { EmbeddedStore } from '../../src/main/store/embedded.js';
import { seededBytes } from './images.js';
import { startVerifier } from './verifier.js';

/**
 * Writes `size` seeded bytes as one blob into an embedded store at `dataDir`, for a shoal process to serve.
 * The bytes are made twice (cheap) rather than held: once for the digest, once to ingest.
 */
export async function seededEmbeddedBlob(dataDir: string, seed: string, size: number): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of seededBytes(seed, size)) hash.update(chunk);
  const digest = parseDigest(`sha256:${hash.digest('hex')}`);
  const verifier = await startVerifier();
  try {
    const store = new EmbeddedStore({ verifier }, { dataDir });
    await store.start();
    await store.ingest(digest, seededBytes(seed, size));
    await store.stop();
  } finally {
    await verifier.stop();
  }
  return digest;
}
