import { existsSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { endTogether } from './end-together.js';
import { Child, run, waitFor } from './process.js';

/** Namespaces this harness makes are named `shoaltest-<pid>-…`, so leftovers of a dead run can be found. */
const PREFIX = 'shoaltest';
const RELAY = fileURLToPath(new URL('./netns-relay.js', import.meta.url));
/** The delay line is Python: it is not compiled, so it is read from the sources (dist/test/harness → test/harness). */
const DELAY_LINE = fileURLToPath(new URL('../../../test/harness/delay-line.py', import.meta.url));
/** Debian's Python (test/install-system-deps.sh installs it), not a version manager's shim on PATH. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * One node's link to the cluster's bridge: its rate, shaped with tbf in both directions, and the delay its
 * packets take on the way out. This machine's kernel has no netem (CONFIG_NET_SCH_NETEM is not set in
 * /proc/config.gz): the delay comes from NFQUEUE and a process that holds each packet (delay-line.py). The
 * round trip between nodes i and j is delayMs(i) + delayMs(j), plus 0.1–0.15 ms per direction that the
 * delay line takes to wake up; with no delay on either side, the bridge's own tens of microseconds.
 */
export interface LinkShape {
  mbit: number;
  /** One-way delay added to every packet this node sends over its link (default 0: none). */
  delayMs?: number;
}

const ip = (args: string[]): Promise<string> => run('ip', args, 30_000);

/** Shapes egress of `dev` in `ns` to the link's rate (tbf); `change` reshapes a shaped link. */
async function shape(ns: string, dev: string, link: LinkShape, op: 'add' | 'change' = 'add'): Promise<void> {
  // tbf's burst must hold a whole GSO segment and a timer tick's worth of the rate.
  const burst = Math.max(128 << 10, Math.floor((link.mbit * 1e6) / 8 / 250));
  const tbf = [
    'tbf',
    'rate',
    `${Math.round(link.mbit * 1000)}kbit`,
    'burst',
    String(burst),
    'latency',
    '50ms',
  ];
  await ip(['netns', 'exec', ns, 'tc', 'qdisc', op, 'dev', dev, 'root', 'handle', '1:', ...tbf]);
}

/** Deletes namespaces of earlier runs whose process is gone (a run killed before its `after`). */
export async function removeLeftovers(): Promise<void> {
  const listed = await ip(['netns', 'list']);
  for (const line of listed.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = Number(name.split('-')[1]);
    if (!name.startsWith(`${PREFIX}-`) || !Number.isInteger(pid)) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await ip(['netns', 'del', name]).catch(() => undefined);
  }
}

/**
 * A cluster network of its own: a hub namespace holding a bridge, and one namespace per node joined to it
 * by a veth pair, each link's rate shaped with tc (tbf) in both directions.
 * Node i has 10.231.0.(10+i)/24; nothing outside these namespaces gets an address. Tests reach a node's
 * ports through `forward`, a loopback port relayed over a unix socket into the node's namespace. Needs
 * root (CI runs as root).
 */
export class ShapedNetwork {
  readonly id = `${PREFIX}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  readonly links: readonly LinkShape[];
  readonly #dir: string;
  readonly #relays = new Map<number, { child: Child; socket: string }>();
  readonly #servers: Server[] = [];
  readonly #delayLines: Child[] = [];

  private constructor(dir: string, links: readonly LinkShape[]) {
    this.#dir = dir;
    this.links = links;
  }

  static async create(dir: string, links: readonly LinkShape[]): Promise<ShapedNetwork> {
    await removeLeftovers();
    const network = new ShapedNetwork(dir, links);
    try {
      await network.#build();
    } catch (err) {
      await network.remove();
      throw err;
    }
    return network;
  }

  get hub(): string {
    return `${this.id}-hub`;
  }

  ns(i: number): string {
    return `${this.id}-n${i}`;
  }

  address(i: number): string {
    return `10.231.0.${10 + i}`;
  }

  /** `command args` to run inside node i's namespace. */
  exec(i: number, command: string, args: readonly string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.ns(i), command, ...args]];
  }

  /** Cuts node i off from every other node (its link on the bridge goes down). */
  async cut(i: number): Promise<void> {
    await ip(['-n', this.hub, 'link', 'set', `h${i}`, 'down']);
  }

  async heal(i: number): Promise<void> {
    await ip(['-n', this.hub, 'link', 'set', `h${i}`, 'up']);
  }

  /** Shapes node i's link, both ways, to `mbit` (fractions go down to kbit/s: 0.008 is a trickle of 1 KB/s). */
  async rate(i: number, mbit: number): Promise<void> {
    await shape(this.ns(i), `v${i}`, { mbit }, 'change');
    await shape(this.hub, `h${i}`, { mbit }, 'change');
  }

  /**
   * Cuts node i off from the nodes in `from`, and only from them (the registry's node stays reachable):
   * nftables rules in i's namespace drop every packet to and from their addresses, silently, as a
   * partition does. `join` takes the rules away.
   */
  async partition(i: number, from: readonly number[]): Promise<void> {
    for (const j of from) {
      await this.#nft(i, ['-A', 'INPUT', '-s', this.address(j), '-j', 'DROP']);
      await this.#nft(i, ['-A', 'OUTPUT', '-d', this.address(j), '-j', 'DROP']);
    }
  }

  async join(i: number): Promise<void> {
    await this.#nft(i, ['-F']);
  }

  /** iptables (its nf_tables back end) in node i's namespace. */
  async #nft(i: number, args: string[]): Promise<void> {
    await run('ip', ['netns', 'exec', this.ns(i), 'iptables', '-w', ...args], 30_000);
  }

  /** A loopback port of this process that reaches `port` on node i's address. */
  async forward(i: number, port: number): Promise<number> {
    const relay = await this.#relay(i);
    const server = createServer((client) => {
      const upstream = connect(relay.socket, () => {
        upstream.write(`${this.address(i)}:${port}\n`);
        client.pipe(upstream).pipe(client);
      });
      endTogether(client, upstream);
    });
    this.#servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  /**
   * Removes every namespace (and so every link and address) this network made. Throws, once all is
   * removed, if a delay line had stopped: the links it delayed went on undelayed.
   */
  async remove(): Promise<void> {
    const stopped = this.#delayLines.find((child) => !child.running);
    for (const server of this.#servers) server.close();
    const children = [...[...this.#relays.values()].map(({ child }) => child), ...this.#delayLines];
    await Promise.all(children.map((child) => child.stop(1000)));
    const listed = await ip(['netns', 'list']).catch(() => '');
    for (const line of listed.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (name.startsWith(`${this.id}-`)) await ip(['netns', 'del', name]).catch(() => undefined);
    }
    if (stopped !== undefined) throw new Error(`a delay line stopped early: ${stopped.output.slice(-2000)}`);
  }

  async #build(): Promise<void> {
    await ip(['netns', 'add', this.hub]);
    await ip(['-n', this.hub, 'link', 'set', 'lo', 'up']);
    await ip(['-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', this.hub, 'link', 'set', 'br0', 'up']);
    for (const [i, link] of this.links.entries()) {
      const ns = this.ns(i);
      await ip(['netns', 'add', ns]);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip([
        '-n',
        this.hub,
        'link',
        'add',
        `h${i}`,
        'type',
        'veth',
        'peer',
        'name',
        `v${i}`,
        'netns',
        ns,
      ]);
      await ip(['-n', this.hub, 'link', 'set', `h${i}`, 'master', 'br0', 'up']);
      await ip(['-n', ns, 'addr', 'add', `${this.address(i)}/24`, 'dev', `v${i}`]);
      await ip(['-n', ns, 'link', 'set', `v${i}`, 'up']);
      await shape(ns, `v${i}`, link);
      await shape(this.hub, `h${i}`, link);
      if ((link.delayMs ?? 0) > 0) await this.#delay(i, link.delayMs as number);
    }
  }

  /**
   * Holds every packet node i sends over its link for `ms` (delay-line.py on netfilter queue 0 of its
   * namespace). The rule is in the mangle table, which `join` leaves alone. Should the delay line die, the
   * queue is bypassed (packets pass undelayed, not dropped) and `remove` says so.
   */
  async #delay(i: number, ms: number): Promise<void> {
    const [command, args] = this.exec(i, PYTHON, [DELAY_LINE, '0', String(Math.round(ms * 1000))]);
    const child = new Child(command, args);
    this.#delayLines.push(child);
    await waitFor(
      'delay line',
      async () => child.output.includes('ready'),
      10_000,
      () => (child.running ? undefined : child.output),
    );
    const rule = ['-t', 'mangle', '-A', 'OUTPUT', '-o', `v${i}`, '-j', 'NFQUEUE', '--queue-num', '0'];
    await this.#nft(i, [...rule, '--queue-bypass']);
  }

  async #relay(i: number): Promise<{ child: Child; socket: string }> {
    const running = this.#relays.get(i);
    if (running !== undefined) return running;
    const socket = join(this.#dir, `relay-${i}.sock`);
    const [command, args] = this.exec(i, process.execPath, [RELAY, socket]);
    const child = new Child(command, args);
    const relay = { child, socket };
    this.#relays.set(i, relay);
    await waitFor(
      'netns relay',
      async () => child.output.includes('ready'),
      10_000,
      () => (child.running ? undefined : child.output),
    );
    return relay;
  }
}
