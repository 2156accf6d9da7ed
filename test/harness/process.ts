import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Longest wait for a child's output pipes to close after it exited (a process it left may hold them). */
const PIPE_GRACE_MS = 2000;

/** Ports this process handed out: never handed out twice, even once free again. */
const handedOut = new Set<number>();

/**
 * The ports below the kernel's ephemeral range (outgoing connections take their local ports from that
 * range). A port picked from inside it could be taken by any client socket between the pick and the
 * server's listen: a router port was, once in a few suite runs (EADDRINUSE at start).
 */
function quietRange(): [number, number] {
  let low = 32_768;
  try {
    low =
      Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // Not Linux: the IANA ephemeral range starts at 49152; stay below Linux's anyway.
  }
  return [Math.max(1024, Math.min(low, 32_768) - 12_000), Math.min(low, 32_768) - 1];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free port on 127.0.0.1 for servers that cannot take port 0: chosen at random below the ephemeral
 * range, never one this process handed out before, and free when checked.
 */
export async function freePort(): Promise<number> {
  const [first, last] = quietRange();
  for (let tries = 0; tries < 500; tries++) {
    const port = first + Math.floor(Math.random() * (last - first + 1));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${first} and ${last}`);
}

/** Polls `check` until it returns true or `timeoutMs` passes; `fatal` ends the wait at once with its message. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
  fatal: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = fatal();
    if (failure !== undefined) throw new Error(`${what} failed to start: ${failure}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** A child process whose output is kept (last 64 KiB) for failure messages, and that is killed on stop. */
export class Child {
  readonly process: ChildProcess;
  #output = '';
  readonly exited: Promise<number | null>;
  /**
   * Resolves with the exit code once the process has exited and its output has been read to the end.
   * 'exit' can come before the last of stdout (a curl's one-line answer was read as empty, once in a few
   * benchmark runs); 'close' waits for the pipes, unless a process the child left behind holds them, so
   * the wait for them after the exit is bounded.
   */
  readonly finished: Promise<number | null>;

  constructor(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.process = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-65536);
    };
    this.process.stdout?.on('data', keep);
    this.process.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => this.process.once('exit', (code) => resolve(code)));
    const closed = new Promise<void>((resolve) => this.process.once('close', () => resolve()));
    this.finished = this.exited.then(async (code) => {
      await Promise.race([closed, sleep(PIPE_GRACE_MS)]);
      return code;
    });
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  get output(): string {
    return this.#output;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export async function run(
  command: string,
  args: readonly string[],
  timeoutMs = 120_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const child = new Child(command, args, env);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
  const code = await child.finished;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${child.output}`);
  return child.output;
}

/** Bytes the kernel has sent so far on established TCP connections from local `port` (ss -i counters). */
export async function bytesSentFrom(port: number): Promise<number> {
  const out = await run('ss', ['-Htni', 'state', 'established', `( sport = :${port} )`]);
  return [...out.matchAll(/bytes_sent:(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}
