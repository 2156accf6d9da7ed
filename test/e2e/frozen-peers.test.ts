import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Containerd } from '../harness/containerd.js';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { type LinkShape, ShapedNetwork } from '../harness/netns.js';
import { ctrOn, netnsNodes, netnsRegistry, stopCluster } from '../harness/netns-cluster.js';
import type { NetnsShoal } from '../harness/netns-shoal.js';
import { waitFor } from '../harness/process.js';
import type { DistributionRegistry } from '../harness/registry.js';
import { boundOfAll, metricSamples, metricsText } from '../harness/shoal.js';
import { shortTempDir } from '../harness/tmp.js';

const LINKS: LinkShape[] = [
  { mbit: 1000, delayMs: 0.2 },
  { mbit: 1000, delayMs: 0.15 },
  { mbit: 1000, delayMs: 0.3 },
  { mbit: 1000, delayMs: 0.25 },
  { mbit: 1000, delayMs: 0.1 },
  { mbit: 1000, delayMs: 0.3 },
];
const [HONEST, FROZEN, TRICKLER, PULLER, NEWCOMER, REGISTRY_NODE] = [0, 1, 2, 3, 4, 5] as const;
const NODES = [HONEST, FROZEN, TRICKLER, PULLER, NEWCOMER];
/** The trickler's link: 8 kbit/s, about 1 KB/s once tbf's burst is spent. */
const TRICKLE_MBIT = 0.008;
/** The server's bound on one store read (5 s): no response may keep containerd waiting longer for bytes. */
const READ_BOUND_S = 5;

// Hung and slow peers as real processes on the shaped network, every flag at its default: of three nodes
// that hold an image, one is frozen (SIGSTOP: its kernel still accepts connections, nothing answers) and
// one sits behind a link that trickles 1 KB/s. The registry is down. A fresh containerd on a fourth node
// pulls the image: shoal must leave the bad two within its timeouts for the honest one, and the pull must
// pass on its first try. Then the honest one stops and the frozen one thaws: it must serve again, to a
// node that has not pulled yet, past the trickler still there.
describe('e2e: a frozen holder and a trickling one beside an honest one', { timeout: 300_000 }, () => {
  let dir: string;
  let network: ShapedNetwork;
  let registry: DistributionRegistry;
  let image: SingleImageFixture;
  const containerds: Containerd[] = [];
  const shoals: NetnsShoal[] = [];
  let ref = '';
  let pulls = 0;

  /**
   * `ctr images pull` of the image on `node`, into a fresh containerd namespace (one the node's shoal does
   * not serve from) unless `kubelet`; resolves its time in ms.
   */
  const pull = async (node: number, kubelet = false): Promise<number> => {
    const containerd = containerds[node] as Containerd;
    const started = performance.now();
    const args = ['images', 'pull', '--hosts-dir', containerd.hostsDir, ref];
    await ctrOn(network, node, containerd, args, kubelet ? containerd.namespace : `pull-${pulls++}`);
    return performance.now() - started;
  };
  /** A node's longest wait for bytes: the smallest bucket bound that holds every response. */
  const longestWait = async (node: number): Promise<number> => {
    const waits = await (shoals[node] as NetnsShoal).histogram('shoal_request_longest_wait_seconds');
    return Number(boundOfAll(waits));
  };

  before(async () => {
    dir = await shortTempDir('shoal-frozen');
    image = await multiLayerImage();
    network = await ShapedNetwork.create(dir, LINKS);
    let pushTo: string;
    ({ registry, pushTo } = await netnsRegistry(network, dir, REGISTRY_NODE));
    await pushLayout(image.dir, image.tag, pushTo, 'frozen/app');
    const registryHost = `${network.address(REGISTRY_NODE)}:5000`;
    ref = `${registryHost}/frozen/app:${image.tag}`;
    for (const node of await netnsNodes(network, dir, {
      nodes: NODES,
      registryUrl: `http://${registryHost}`,
    })) {
      containerds.push(node.containerd);
      shoals.push(node.shoal);
    }
    await Promise.all(shoals.map((shoal) => shoal.start()));
    // Into the kubelet's namespace, which each holder's shoal serves from. The honest one last: a lookup
    // lists providers in the order they advertised, so the bad two come first.
    for (const holder of [FROZEN, TRICKLER, HONEST]) await pull(holder, true);
    await registry.stop();
    // Every holder advertises the image's blobs and its manifest before the faults begin.
    const blobs = image.image.layers.length + 2;
    await waitFor(
      'the holders advertise the image',
      async () => {
        const keys = await Promise.all(
          [HONEST, FROZEN, TRICKLER].map((i) =>
            (shoals[i] as NetnsShoal).metric('shoal_advertised_keys{type="digest"}'),
          ),
        );
        return keys.every((count) => count >= blobs);
      },
      30_000,
    );
  });

  after(async () => {
    await stopCluster({ shoals, containerds, registry, network, dir });
  });

  it('the pull passes on its first try from the honest holder, and no response waits over the read bound', async (t) => {
    (shoals[FROZEN] as NetnsShoal).freeze();
    await network.rate(TRICKLER, TRICKLE_MBIT);
    const ms = await pull(PULLER);
    const wait = await longestWait(PULLER);
    const failures = metricSamples(
      await metricsText((shoals[PULLER] as NetnsShoal).metricsUrl),
      'shoal_peer_failures_total',
    ).filter(({ value }) => value > 0);
    const failed = failures.map(({ labels, value }) => `${value} ${labels}`);
    t.diagnostic(
      `the 69 MiB pull took ${Math.round(ms)} ms with one holder frozen and one trickling; longest wait for ` +
        `bytes at most ${wait} s; failed peer requests: ${failed.join(', ') || 'none'}`,
    );
    assert.ok(wait <= READ_BOUND_S, `a response kept containerd waiting up to ${wait} s`);
    // The trickler advertised before the honest one, so it was asked first, and left.
    assert.ok(failures.length > 0, 'the pull met neither bad holder');
  });

  it('the frozen holder, thawed, serves again while the honest one is gone and the trickler still trickles', async (t) => {
    await (shoals[HONEST] as NetnsShoal).kill('SIGTERM');
    (shoals[FROZEN] as NetnsShoal).thaw();
    const ms = await pull(NEWCOMER);
    const wait = await longestWait(NEWCOMER);
    t.diagnostic(
      `thawed, it served the pull in ${Math.round(ms)} ms; longest wait for bytes at most ${wait} s`,
    );
    assert.ok(wait <= READ_BOUND_S, `a response kept containerd waiting up to ${wait} s`);
  });
});
