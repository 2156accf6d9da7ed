import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

// How big V8 lets shoal's heap grow under a container's memory limit: Node sizes it from the cgroup's
// limit. Runs Node inside memory cgroups of a few limits, with and without the image's
// --max-old-space-size-percentage, and prints V8's heap limit. Needs root and a cgroup filesystem.
// Run: npm run bench -- heap

const LIMITS_MIB = [512, 768, 1024];
const FLAGS = [[], ['--max-old-space-size-percentage=40']];

/** A memory cgroup of `mib`, v1 or v2, and how to put a process in it; undefined when none can be made. */
async function memoryCgroup(
  name: string,
  mib: number,
): Promise<{ procs: string; remove(): Promise<void> } | undefined> {
  for (const [root, limitFile] of [
    ['/sys/fs/cgroup/memory', 'memory.limit_in_bytes'],
    ['/sys/fs/cgroup', 'memory.max'],
  ] as const) {
    if (!existsSync(join(root, 'cgroup.procs'))) continue;
    const dir = join(root, name);
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, limitFile), String(mib << 20));
      return { procs: join(dir, 'cgroup.procs'), remove: () => rmdir(dir) };
    } catch {
      await rmdir(dir).catch(() => undefined);
    }
  }
  return undefined;
}

export async function heapLimitBench(): Promise<string[]> {
  const lines = ['V8 heap limit of Node under a container memory limit (heap_size_limit, MiB):'];
  for (const mib of LIMITS_MIB) {
    const cgroup = await memoryCgroup(`shoal-heap-bench-${process.pid}-${mib}`, mib);
    if (cgroup === undefined)
      return ['heap: cannot make a memory cgroup here (needs root and a cgroup filesystem)'];
    try {
      const row: string[] = [];
      for (const flags of FLAGS) {
        const script = "console.log(require('v8').getHeapStatistics().heap_size_limit / 2 ** 20)";
        const { stdout } = await promisify(execFile)('sh', [
          '-c',
          `echo $$ > ${cgroup.procs} && exec "$0" "$@"`,
          process.execPath,
          ...flags,
          '-e',
          script,
        ]);
        row.push(`${flags.length === 0 ? 'default' : flags.join(' ')} ${Math.round(Number(stdout))}`);
      }
      lines.push(`  limit ${mib} MiB: ${row.join(', ')}`);
    } finally {
      await cgroup.remove();
    }
  }
  return lines;
}
