import type { ShapedNetwork } from './netns.js';
import { Child, waitFor } from './process.js';
import { CLI, readHistogram, readMetric } from './shoal.js';

/** Ports every node uses inside its own namespace: the defaults, as on a real node. */
export const NODE_PORTS = { registry: 5000, router: 5001, metrics: 9090 } as const;

/**
 * A shoal process in node `i`'s namespace of a shaped network, on the default ports at the node's address.
 * The test reaches its registry and metrics ports through loopback ports forwarded into the namespace.
 * Each start is a new process with the same flags (and data dir): a restarted pod.
 */
export class NetnsShoal {
  readonly #network: ShapedNetwork;
  readonly i: number;
  readonly args: readonly string[];
  #child: Child | undefined;
  #url: string | undefined;
  #metricsUrl: string | undefined;
  /** Output of every earlier run of this node, oldest first. */
  #earlier = '';

  constructor(network: ShapedNetwork, i: number, args: readonly string[]) {
    this.#network = network;
    this.i = i;
    this.args = args;
  }

  /** The registry as other nodes (and containerd's mirror config) reach it. */
  get address(): string {
    return `http://${this.#network.address(this.i)}:${NODE_PORTS.registry}`;
  }

  /** The registry as this test process reaches it. */
  get url(): string {
    if (this.#url === undefined) throw new Error('not started');
    return this.#url;
  }

  /** The metrics port as this test process reaches it. */
  get metricsUrl(): string {
    if (this.#metricsUrl === undefined) throw new Error('not started');
    return this.#metricsUrl;
  }

  get output(): string {
    return this.#earlier + (this.#child?.output ?? '');
  }

  /**
   * The JSON log lines of every run whose `time` (epoch ms) falls in [from, to], oldest first, those that
   * `keep` accepts (all by default): what a node logged while one pull was going on.
   */
  linesBetween(from: number, to: number, keep: (line: string) => boolean = () => true): string[] {
    return this.output.split('\n').filter((line) => {
      const time = /"time":(\d+)/.exec(line)?.[1];
      return time !== undefined && Number(time) >= from && Number(time) <= to && keep(line);
    });
  }

  get running(): boolean {
    return this.#child?.running ?? false;
  }

  async start(): Promise<void> {
    const host = this.#network.address(this.i);
    this.#url ??= `http://127.0.0.1:${await this.#network.forward(this.i, NODE_PORTS.registry)}`;
    this.#metricsUrl ??= `http://127.0.0.1:${await this.#network.forward(this.i, NODE_PORTS.metrics)}`;
    this.#earlier += this.#child?.output ?? '';
    const [command, args] = this.#network.exec(this.i, process.execPath, [
      CLI,
      'registry',
      '--registry-addr',
      `${host}:${NODE_PORTS.registry}`,
      '--metrics-addr',
      `${host}:${NODE_PORTS.metrics}`,
      '--admin-addr',
      '127.0.0.1:9091',
      ...this.args,
    ]);
    const env = { ...process.env, LOG_LEVEL: process.env.SHOAL_TEST_LOG_LEVEL ?? 'info' };
    const child = new Child(command, args, env);
    this.#child = child;
    await waitFor(
      `shoal on node ${this.i}`,
      async () => (await fetch(`${this.url}/livez`)).status === 200,
      30_000,
      () => (child.running ? undefined : `exited:\n${child.output}`),
    );
  }

  /** Sends `signal` and waits for the process to end (SIGTERM: Kubernetes' stop; SIGKILL: a crash). */
  async kill(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    if (signal === 'SIGKILL') this.#child?.process.kill('SIGKILL');
    await this.#child?.stop(signal === 'SIGKILL' ? 0 : 10_000);
  }

  async stop(): Promise<void> {
    if (this.#child?.running === true) this.thaw();
    await this.#child?.stop(5000);
  }

  /**
   * Freezes the process (SIGSTOP; `ip netns exec` runs shoal in its own process): a hung node. The kernel
   * still completes TCP handshakes on its ports, and nothing ever answers on them.
   */
  freeze(): void {
    this.#child?.process.kill('SIGSTOP');
  }

  thaw(): void {
    this.#child?.process.kill('SIGCONT');
  }

  /** The value of one metric sample (`name{labels}` as exposed), 0 when absent. */
  metric(sample: string): Promise<number> {
    return readMetric(this.#metricsUrl ?? '', sample);
  }

  /** A histogram's bucket counts, summed over its label sets (see readHistogram). */
  histogram(name: string): Promise<Map<string, number>> {
    return readHistogram(this.#metricsUrl ?? '', name);
  }
}
