import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Containerd } from '../harness/containerd.js';
import { type SingleImageFixture, smallImage, threeLayerImage } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { type LinkShape, ShapedNetwork } from '../harness/netns.js';
import { ctrOn, netnsNodes, netnsRegistry, stopCluster } from '../harness/netns-cluster.js';
import type { NetnsShoal } from '../harness/netns-shoal.js';
import { waitFor } from '../harness/process.js';
import type { DistributionRegistry } from '../harness/registry.js';
import { boundOfAll, metricsText, sumMetric } from '../harness/shoal.js';
import { shortTempDir } from '../harness/tmp.js';

/** Nodes 0-2 run shoal and containerd; node 3 is the registry's host, outside the cluster. */
const LINKS: LinkShape[] = [
  { mbit: 10_000, delayMs: 0.1 },
  { mbit: 10_000, delayMs: 0.25 },
  { mbit: 500, delayMs: 0.4 },
  { mbit: 1000, delayMs: 0.3 },
];
const NODES = [0, 1, 2];
const REGISTRY_NODE = 3;
/** The node that is cut off. Its 500 Mbit/s link makes the 256 MiB pull last about 4 s. */
const CUT = 2;
/** The 20 s in `npm run test:chaos` (SHOAL_CHAOS=full); `npm test` holds the cut for 12 s. */
const PARTITION_MS = process.env.SHOAL_CHAOS === 'full' ? 20_000 : 12_000;
/** When the cut comes, after the pull began: inside the first layer's transfer. */
const CUT_AFTER_MS = 1500;
/** How often a key's providers are looked up again (the default `--mirror-lookup-refresh`, 5 s). */
const LOOKUP_REFRESH_MS = 5000;

// A node cut off from its peers mid-pull, for 20 s, while the registry stays reachable (a partition in
// the cluster's network, not an outage): containerd's requests to its shoal must keep getting answers
// (404s, fast), so that containerd falls back to the registry and the pull finishes on its first try.
// Content the node pulls while cut off is advertised once it rejoins, and its peers find it again within
// the lookup refresh. Every flag at its default.
describe(`e2e: a node cut off from its peers for ${PARTITION_MS / 1000} s mid-pull`, {
  timeout: 300_000,
}, () => {
  let dir: string;
  let network: ShapedNetwork;
  let registry: DistributionRegistry;
  let big: SingleImageFixture;
  let small: SingleImageFixture;
  const containerds: Containerd[] = [];
  const shoals: NetnsShoal[] = [];
  const registryHost = (): string => `${network.address(REGISTRY_NODE)}:5000`;

  /** `ctr images pull` of `ref` on `node`, into the namespace the kubelet uses; resolves its time in ms. */
  const pull = async (node: number, ref: string): Promise<number> => {
    const containerd = containerds[node] as Containerd;
    const started = performance.now();
    await ctrOn(network, node, containerd, ['images', 'pull', '--hosts-dir', containerd.hostsDir, ref]);
    return performance.now() - started;
  };
  /**
   * Blob requests the cut node's shoal could not serve whole (a 404, or a body it had to cut): each sent
   * containerd to the registry, at once or by a ranged retry.
   */
  const blobsPassedOn = async (): Promise<number> => {
    const text = await metricsText((shoals[CUT] as NetnsShoal).metricsUrl);
    return sumMetric(
      text,
      'shoal_requests_total',
      (labels) =>
        labels.includes('kind="blob"') &&
        /result="(miss|cut)"/.test(labels) &&
        labels.includes('requester="client"'),
    );
  };

  before(async () => {
    dir = await shortTempDir('shoal-partition');
    [big, small] = await Promise.all([threeLayerImage('partition'), smallImage('partition')]);
    network = await ShapedNetwork.create(dir, LINKS);
    let pushTo: string;
    ({ registry, pushTo } = await netnsRegistry(network, dir, REGISTRY_NODE));
    await pushLayout(big.dir, big.tag, pushTo, 'part/big');
    await pushLayout(small.dir, small.tag, pushTo, 'part/small');
    for (const node of await netnsNodes(network, dir, {
      nodes: NODES,
      registryUrl: `http://${registryHost()}`,
    })) {
      containerds.push(node.containerd);
      shoals.push(node.shoal);
    }
    await Promise.all(shoals.map((shoal) => shoal.start()));
    // Node 0 pulls the big image from the registry (its shoal has it from no one yet); the cut node then
    // finds it through its peers.
    await pull(0, `${registryHost()}/part/big:${big.tag}`);
    const url = `${(shoals[CUT] as NetnsShoal).url}/v2/part/big/manifests/${big.tag}?ns=${registryHost()}`;
    await waitFor(
      'the cut node finds the big image',
      async () => (await fetch(url, { method: 'HEAD' })).ok,
      60_000,
    );
  });

  after(async () => {
    const logs = process.env.SHOAL_CHAOS_LOGS;
    if (logs !== undefined)
      for (const shoal of shoals) await writeFile(join(logs, `partition-node-${shoal.i}.log`), shoal.output);
    await stopCluster({ shoals, containerds, registry, network, dir });
  });

  it('its pulls fall back and finish on their first try; once healed, its new content is found again', async (t) => {
    const before = await blobsPassedOn();
    let finished = false;
    const bigPull = pull(CUT, `${registryHost()}/part/big:${big.tag}`).finally(() => {
      finished = true;
    });
    await sleep(CUT_AFTER_MS);
    assert.equal(finished, false, 'the cut comes mid-pull');
    await network.partition(
      CUT,
      NODES.filter((i) => i !== CUT),
    );
    const cutAt = performance.now();
    // While cut off, it also pulls an image nobody else holds: only it can serve that once healed.
    const smallMs = await pull(CUT, `${registryHost()}/part/small:${small.tag}`);
    const bigMs = await bigPull;
    const fellBack = (await blobsPassedOn()) - before;
    t.diagnostic(
      `while cut off: the 256 MiB pull (cut ${CUT_AFTER_MS} ms in) took ${Math.round(bigMs)} ms, the small image's ${Math.round(smallMs)} ms; its shoal passed ${fellBack} blob requests on to the registry`,
    );
    assert.ok(fellBack > 0, 'the cut node fell back to the registry');
    const waits = await (shoals[CUT] as NetnsShoal).histogram('shoal_request_longest_wait_seconds');
    t.diagnostic(`the cut node's longest wait for bytes: at most ${boundOfAll(waits)} s`);
    assert.ok(performance.now() - cutAt < PARTITION_MS, 'both pulls finished inside the partition');
    await sleep(PARTITION_MS - (performance.now() - cutAt));
    await network.join(CUT);
    const healedAt = performance.now();
    // Node 1 holds nothing of the small image and has no registry fallback of its own: a 200 to its HEAD
    // by tag comes from the cut node, through the DHT.
    const asker = shoals[1] as NetnsShoal;
    const url = `${asker.url}/v2/part/small/manifests/${small.tag}?ns=${registryHost()}`;
    let foundAt = 0;
    await waitFor(
      'node 1 finds what the cut node pulled while cut off',
      async () => {
        const ok = (await fetch(url, { method: 'HEAD' })).ok;
        if (ok) foundAt = performance.now();
        return ok;
      },
      60_000,
    );
    const recoveryMs = foundAt - healedAt;
    t.diagnostic(`after the heal, node 1 found the cut node's new content in ${Math.round(recoveryMs)} ms`);
    assert.ok(recoveryMs <= LOOKUP_REFRESH_MS, `found ${Math.round(recoveryMs)} ms after the heal`);
    await pull(1, `${registryHost()}/part/small:${small.tag}`);
  });
});
