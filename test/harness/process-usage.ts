import { readdir, readFile } from 'node:fs/promises';

/** What one process uses now, from /proc: memory (now and at its peak), open descriptors, CPU so far. */
export interface Usage {
  rssMiB: number;
  /** The highest RSS since the process started (VmHWM). */
  peakRssMiB: number;
  fds: number;
  /** User and system CPU seconds, every thread. */
  cpuSeconds: number;
}

export async function readUsage(pid: number): Promise<Usage> {
  const [status, stat, fds] = await Promise.all([
    readFile(`/proc/${pid}/status`, 'utf8'),
    readFile(`/proc/${pid}/stat`, 'utf8'),
    readdir(`/proc/${pid}/fd`),
  ]);
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
  const fields = stat.split(') ')[1]?.split(' ') ?? [];
  return {
    rssMiB: kib('VmRSS') / 1024,
    peakRssMiB: kib('VmHWM') / 1024,
    fds: fds.length,
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
  };
}
