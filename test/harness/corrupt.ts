import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { OciDescriptor } from './images.js';

/** Flips one bit-pattern of the byte at `at` in place: what a bad disk or a lying peer serves. */
export async function flipByte(path: string, at: number): Promise<void> {
  const file = await open(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    await file.read(one, 0, 1, at);
    one.writeUInt8(one.readUInt8(0) ^ 0x40, 0);
    await file.write(one, 0, 1, at);
  } finally {
    await file.close();
  }
}

/** The file of `blob` under a content-addressed `blobs/sha256` root (an OCI layout or an embedded store). */
export function blobFile(root: string, blob: OciDescriptor): string {
  return join(root, 'blobs', 'sha256', blob.digest.slice('sha256:'.length));
}

/** sha256 of `blob`'s bytes from `start` to `end` (inclusive), read from an OCI layout. */
export async function sliceDigest(
  layoutDir: string,
  blob: OciDescriptor,
  start: number,
  end = blob.size - 1,
): Promise<string> {
  const file = await open(blobFile(layoutDir, blob), 'r');
  const hash = createHash('sha256');
  try {
    for await (const chunk of file.createReadStream({ start, end, autoClose: false }))
      hash.update(chunk as Buffer);
  } finally {
    await file.close();
  }
  return `sha256:${hash.digest('hex')}`;
}
