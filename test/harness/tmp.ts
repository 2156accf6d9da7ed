import { mkdtemp, rm } from 'node:fs/promises';

/** A short temp dir (unix socket paths inside it must stay under 108 bytes). */
export function shortTempDir(prefix: string): Promise<string> {
  return mkdtemp(`/tmp/${prefix}-`);
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}
