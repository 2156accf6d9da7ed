import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Containerd } from '../harness/containerd.js';
import {
  bigImage,
  multiArchImage,
  multiLayerImage,
  type SingleImageFixture,
  smallImage,
} from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { ShapedNetwork } from '../harness/netns.js';
import { CLUSTER_LINKS, ctrOn, netnsNode } from '../harness/netns-cluster.js';
import type { NetnsShoal } from '../harness/netns-shoal.js';
import { waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { boundOfAll } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

/** `npm run test:chaos` sets SHOAL_CHAOS=full: more pulls, bigger images, a longer drill. */
const FULL = process.env.SHOAL_CHAOS === 'full';
/** Pulls each puller makes of every image: 18 pulls (about 20 s of drill), or 54 in the full run. */
const ROUNDS = FULL ? 6 : 2;
/**
 * The registry's name in every pull. Nothing answers at this address (it is in the cluster's subnet, but
 * no namespace has it): the registry is down for the whole drill, so a pull that shoal fails is a failure.
 */
const REGISTRY = '10.231.0.250:5000';
/** 4 nodes on 1 to 10 Gbit/s links, one slow node at 100 Mbit/s, round trips of 0.35–1.25 ms added. */
const LINKS = CLUSTER_LINKS;
const HOLDERS = [0, 1];
const PULLERS = [2, 3, 4];
/** The default `--idle-timeout`: no response may keep containerd waiting longer for its next bytes. */
const IDLE_TIMEOUT_S = 30;

interface PullResult {
  node: number;
  image: string;
  ms: number;
  ok: boolean;
  /** Tries it took: more than one only when the puller's own shoal was down during a failed try. */
  tries: number;
  error?: string;
  /** A failed pull's last try: [started, ended] in epoch ms, to find what the nodes logged meanwhile. */
  during?: [number, number];
}

/** When each node's shoal was down: [stopped, started again] in performance.now() ms. */
type Downtimes = Map<number, Array<[number, number]>>;

const wasDown = (downtimes: Downtimes, node: number, from: number, to: number): boolean =>
  (downtimes.get(node) ?? []).some(([stopped, started]) => stopped <= to && started >= from);

/** Adds one node's bucket counts into `total`. */
function addBuckets(total: Map<string, number>, buckets: Map<string, number>): void {
  for (const [le, count] of buckets) total.set(le, (total.get(le) ?? 0) + count);
}

/**
 * What the nodes logged during a failed pull's last try (and 1 s either side): every line of the puller's
 * shoal, and the other nodes' lines that were not hits (the requests it made of them that failed, their
 * restarts), each with its "why". The last 150 and 40 lines at most.
 */
function logsDuring(shoals: readonly NetnsShoal[], pull: PullResult): string {
  const [from, to] = pull.during ?? [0, Number.POSITIVE_INFINITY];
  return shoals
    .map((shoal) => {
      const own = shoal.i === pull.node;
      const lines = shoal.linesBetween(
        from - 1000,
        to + 1000,
        (line) => own || !line.includes('"result":"hit"'),
      );
      return `node ${shoal.i}${own ? ' (the puller)' : ''}, ${lines.length} lines:\n${lines.slice(own ? -150 : -40).join('\n')}`;
    })
    .join('\n');
}

// The operator's chaos drill (issue 26), on a network of its own: five nodes, each a shoal in its own
// network namespace with a containerd, on links shaped to 1-10 Gbit/s and one at 100 Mbit/s (and delayed). Two nodes
// hold the images at first; the registry is down. While a random shoal (any of the five, one at a time) is
// stopped (kill -9 or SIGTERM, half and half) and restarted every 0.5-2 s, three nodes pull every image by
// tag into fresh containerd namespaces. Every pull must finish with the right digests on its first try (a
// retry is a kubelet back-off of 10 s for a pod), unless the puller's own shoal was down during the try
// (then containerd's fallback, the registry, is down too): such a pull is tried again and counted. No
// response may keep containerd waiting past --idle-timeout for its next bytes. Every flag at its default.
describe('e2e: pulls go on while holders die', { timeout: FULL ? 1_800_000 : 600_000 }, () => {
  let dir: string;
  let network: ShapedNetwork;
  let seed: DistributionRegistry | undefined;
  let images: Array<{ name: string; fixture: SingleImageFixture | { dir: string; tag: string } }>;
  const containerds: Containerd[] = [];
  const shoals: NetnsShoal[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-chaos');
    const [layers, small, multi] = await Promise.all([
      multiLayerImage(),
      smallImage('chaos'),
      multiArchImage(),
    ]);
    images = [
      { name: 'chaos/layers', fixture: layers },
      { name: 'chaos/small', fixture: small },
      { name: 'chaos/multi', fixture: multi },
      // The full run adds a 256 MiB layer: minutes of transfer on the 100 Mbit/s node, killed under it.
      ...(FULL ? [{ name: 'chaos/big', fixture: await bigImage() }] : []),
    ];
    network = await ShapedNetwork.create(dir, LINKS);
    // The holders' containerds are filled from a registry on loopback, then it stops for good.
    seed = new DistributionRegistry(join(dir, 'seed'));
    await seed.start();
    for (const { name, fixture } of images) await pushLayout(fixture.dir, fixture.tag, seed.host, name);
    for (const i of LINKS.keys()) {
      const registryUrl = `http://${REGISTRY}`;
      const node = await netnsNode(
        network,
        dir,
        i,
        { nodes: [...LINKS.keys()], registryUrl },
        async (containerd) => {
          if (!HOLDERS.includes(i)) return;
          for (const { name, fixture } of images) {
            const from = `${seed?.host}/${name}:${fixture.tag}`;
            await containerd.ctr(['images', 'pull', '--plain-http', '--all-platforms', from]);
            await containerd.ctr(['images', 'tag', from, `${REGISTRY}/${name}:${fixture.tag}`]);
            await containerd.ctr(['images', 'rm', from]);
          }
        },
      );
      containerds.push(node.containerd);
      shoals.push(node.shoal);
    }
    await seed.stop();
    await Promise.all(shoals.map((shoal) => shoal.start()));
    // The drill starts on a settled cluster: every puller finds every image's tag through its peers.
    for (const node of PULLERS) {
      const shoal = shoals[node] as NetnsShoal;
      for (const { name, fixture } of images) {
        const url = `${shoal.url}/v2/${name}/manifests/${fixture.tag}?ns=${REGISTRY}`;
        await waitFor(
          `node ${node} finds ${name}`,
          async () => (await fetch(url, { method: 'HEAD' })).ok,
          60_000,
        );
      }
    }
  });

  after(async () => {
    await seed?.stop();
    await Promise.all(shoals.map((shoal) => shoal.stop()));
    await Promise.all(containerds.map((containerd) => containerd.stop()));
    await network?.remove();
    await removeDir(dir);
  });

  it('every pull completes with correct digests, without a retry', async (t) => {
    let chaos = true;
    const kills: string[] = [];
    const downtimes: Downtimes = new Map();
    // Each node's longest-wait histogram, read before each stop (a stopped process's counts are gone).
    const stalls = new Map<string, number>();
    const drill = (async () => {
      while (chaos) {
        const victim = shoals[Math.floor(Math.random() * shoals.length)] as NetnsShoal;
        const signal = Math.random() < 0.5 ? 'SIGKILL' : 'SIGTERM';
        addBuckets(stalls, await victim.histogram('shoal_request_longest_wait_seconds'));
        // Down from the signal until it answers again; open-ended meanwhile.
        const down: [number, number] = [performance.now(), Number.POSITIVE_INFINITY];
        downtimes.set(victim.i, [...(downtimes.get(victim.i) ?? []), down]);
        await victim.kill(signal);
        kills.push(`${victim.i}:${signal}`);
        await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 1500));
        await victim.start();
        down[1] = performance.now();
        await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 1500));
      }
    })();
    const results: PullResult[] = [];
    await Promise.all(
      PULLERS.map(async (node) => {
        const containerd = containerds[node] as Containerd;
        for (let round = 0; round < ROUNDS; round++) {
          for (const { name, fixture } of images) {
            const ref = `${REGISTRY}/${name}:${fixture.tag}`;
            const started = performance.now();
            for (let tries = 1; ; tries++) {
              // A fresh namespace: containerd holds nothing of it yet, as on a node that never pulled it.
              const namespace = `pull-${round}-${name.replace('/', '-')}-${tries}`;
              const args = ['images', 'pull', '--hosts-dir', containerd.hostsDir, ref];
              const tried = performance.now();
              try {
                await ctrOn(network, node, containerd, args, namespace);
                results.push({ node, image: ref, ms: performance.now() - started, ok: true, tries });
                break;
              } catch (err) {
                const ended = performance.now();
                // The kubelet tries again after its back-off; the node's own shoal is back by then.
                if (tries < 4 && wasDown(downtimes, node, tried, ended)) {
                  const downNow = (): boolean =>
                    (downtimes.get(node) ?? []).some(([, up]) => up === Number.POSITIVE_INFINITY);
                  await waitFor(`node ${node} back`, async () => !downNow(), 30_000);
                  continue;
                }
                const error = (err as Error).message.split('\n').slice(-6).join(' | ');
                const during: [number, number] = [
                  performance.timeOrigin + tried,
                  performance.timeOrigin + ended,
                ];
                results.push({ node, image: ref, ms: ended - started, ok: false, tries, error, during });
                break;
              }
            }
          }
        }
      }),
    );
    chaos = false;
    await drill;
    for (const shoal of shoals)
      addBuckets(stalls, await shoal.histogram('shoal_request_longest_wait_seconds'));
    if (process.env.SHOAL_CHAOS_LOGS !== undefined) {
      for (const shoal of shoals)
        await writeFile(join(process.env.SHOAL_CHAOS_LOGS, `node-${shoal.i}.log`), shoal.output);
    }
    const failed = results.filter((result) => !result.ok);
    const retried = results.filter((result) => result.tries > 1);
    const slowest = results.reduce((worst, each) => (each.ms > worst.ms ? each : worst));
    const observed = stalls.get('+Inf') ?? 0;
    const overIdle = observed - (stalls.get(String(IDLE_TIMEOUT_S)) ?? 0);
    const bound = boundOfAll(stalls);
    t.diagnostic(
      `${results.length} pulls, ${failed.length} failed, ${retried.length} retried because the puller's own shoal was down; slowest ${Math.round(slowest.ms)} ms (${slowest.image} on node ${slowest.node}); ${kills.length} kills: ${kills.join(' ')}`,
    );
    t.diagnostic(
      `longest wait for bytes: every one of ${observed} responses counted waited at most ${bound} s; ${overIdle} waited over ${IDLE_TIMEOUT_S} s`,
    );
    for (const each of failed) {
      t.diagnostic(`failed on node ${each.node}: ${each.image}: ${each.error}`);
      t.diagnostic(logsDuring(shoals, each));
    }
    assert.equal(failed.length, 0, `${failed.length} of ${results.length} pulls failed`);
    assert.ok(observed > 0, 'responses were counted');
    assert.equal(overIdle, 0, `${overIdle} responses kept their client waiting over --idle-timeout`);
  });
});
