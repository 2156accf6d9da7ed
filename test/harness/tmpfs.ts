import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * A small filesystem of `bytes` at `dir`, for tests of a full disk (tmpfs: needs root, as CI runs).
 * Resolves with the function that unmounts it.
 */
export async function mountTmpfs(dir: string, bytes: number): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  try {
    await exec('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  } catch (cause) {
    throw new Error(`cannot mount a ${bytes}-byte tmpfs at ${dir}: this test needs root (CI runs as root)`, {
      cause,
    });
  }
  return async () => {
    await exec('umount', ['-l', dir]).catch(() => undefined);
  };
}
