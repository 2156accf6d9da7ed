import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, TEST_OUTPUT } from '../harness/browser.js';
import { Containerd } from '../harness/containerd.js';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import {
  configureMirror,
  containerdStoreArgs,
  preflightArgs,
  ShoalProcess,
  staticP2pArgs,
  waitForMesh,
} from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

// All real: two nodes, each a containerd (CRI plugin on, config_path set as a node's is) with its own shoal.
// Node 1 pulls an image from a CNCF registry; node 2 then pulls it from node 1 through its shoal. Node 2's
// debug page, loaded in Debian's chromium, must show who it is, its member, its clean preflight and the
// peer hits it just served, and its lookup form must find the image on both nodes.
describe('e2e: the debug page in a real browser, after real pulls', { timeout: 300_000 }, () => {
  let dir: string;
  let registry: DistributionRegistry;
  let image: SingleImageFixture;
  let browser: Browser | undefined;
  const containerds: Containerd[] = [];
  const shoals: ShoalProcess[] = [];
  const repository = 'debug/app';
  const ref = (): string => `${registry.host}/${repository}:${image.tag}`;

  before(async () => {
    dir = await shortTempDir('shoal-debug-e2e');
    image = await smallImage('debug-page');
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    const routers = [await freePort(), await freePort()];
    for (let i = 0; i < 2; i++) {
      const base = join(dir, `n${i + 1}`);
      const containerd = new Containerd(base, 'k8s.io', { cri: { configPath: join(base, 'certs.d') } });
      await containerd.start();
      await containerd.ctr(['namespaces', 'create', 'k8s.io']);
      containerds.push(containerd);
      const shoal = new ShoalProcess([
        ...containerdStoreArgs(containerd),
        ...staticP2pArgs({
          dataDir: join(base, 'shoal'),
          routerPort: routers[i] as number,
          bootstrapPort: routers[0] as number,
        }),
        ...preflightArgs(containerd, registry.url),
      ]);
      await shoal.reservePorts();
      await configureMirror(containerd.hostsDir, registry.url, shoal.url);
      shoals.push(shoal);
    }
    await Promise.all(shoals.map((shoal) => shoal.start()));
    await waitForMesh(shoals);
    const [node1, node2] = containerds as [Containerd, Containerd];
    await node1.pull(ref());
    const shoal2 = shoals[1] as ShoalProcess;
    // Asked through the debug page's lookup, not the registry port: the page's request list then holds
    // only what containerd asked.
    await waitFor(
      'node 1’s image found from node 2',
      async () => {
        const url = `http://${shoal2.host}:${shoal2.metricsPort}/debug/lookup?ref=${encodeURIComponent(ref())}`;
        return ((await (await fetch(url)).json()) as { providers: unknown[] }).providers.length > 0;
      },
      60_000,
    );
    await node2.pull(ref());
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await Promise.all(shoals.map((shoal) => shoal.stop()));
    await Promise.all([...containerds.map((containerd) => containerd.stop()), registry?.stop()]);
    await removeDir(dir);
  });

  it('shows the node, its member, its preflight and the peer hits; its lookup finds the image', async (t) => {
    const [shoal1, shoal2] = shoals as [ShoalProcess, ShoalProcess];
    const [state1, state2] = await Promise.all([shoal1.debugState(), shoal2.debugState()]);
    const peer1 = state1.node.peerId as string;
    const peer2 = state2.node.peerId as string;
    // The JSON the page renders: node 2 pulled every blob from node 1.
    const peerHits = state2.requests.recent.filter((r) => r.source === 'peer' && r.result === 'hit');
    assert.ok(
      peerHits.length >= image.image.layers.length + 1,
      JSON.stringify(state2.requests.recent, null, 1),
    );
    assert.ok(peerHits.every((r) => r.peer === peer1));
    assert.equal(state2.preflight?.ok, true, JSON.stringify(state2.preflight, null, 1));

    const page = await (browser as Browser).newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    // What a person reads in a part of the page: Playwright's rendered text, as laid out, not the DOM's.
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText, not the DOM property.
    const shown = (selector: string): Promise<string> => page.locator(selector).innerText();
    await page.goto(`http://${shoal2.host}:${shoal2.metricsPort}/debug`);
    await page.locator('#node').getByText('ready', { exact: true }).waitFor();
    assert.equal(await page.locator(`#node [title="${peer2}"]`).count(), 1, 'the header names node 2');
    assert.equal(
      await page.locator(`#members [title="${peer1}"]`).count(),
      1,
      'node 1 is listed as a member',
    );
    assert.match(await shown('#members'), /healthy/);
    assert.match(await shown('#routing'), /advertised\s+\d+ digests, \d+ tags/);
    const preflight = await shown('#preflight');
    assert.match(preflight, /registry_config_path/);
    assert.doesNotMatch(preflight, /✗/);
    assert.match(await shown('#last-hit'), /last served: peer/);
    const peerRows = page.locator('#requests tbody tr', { hasText: 'peer' });
    assert.ok((await peerRows.count()) >= peerHits.length);
    await page.locator('#lookup-ref').fill(ref());
    await page.locator('#lookup-form button').click();
    const result = page.locator('#lookup-result');
    await result.getByText('holds it').waitFor();
    assert.match(
      await shown('#lookup-result'),
      new RegExp(`key\\s+${registry.host.replace(/\./g, '\\.')}/${repository}:${image.tag}`),
    );
    assert.match(
      await shown('#lookup-result'),
      new RegExp(`${peer1.slice(0, 8)}…${peer1.slice(-6)} at http://`),
    );
    const screenshot = join(TEST_OUTPUT, 'debug-page.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);
    assert.deepEqual(errors, [], 'the page ran without errors (and within its Content-Security-Policy)');
  });

  it('shoal doctor on node 2: every check passes, and the image resolves, held here and by node 1', async () => {
    const [containerd2, shoal2] = [containerds[1] as Containerd, shoals[1] as ShoalProcess];
    const doctor = await shoal2.doctor([
      ...containerdStoreArgs(containerd2),
      ...preflightArgs(containerd2, registry.url),
      '--ref',
      ref(),
    ]);
    assert.equal(doctor.code, 0, doctor.output);
    assert.match(doctor.output, /✓ members: 1 members, every one answers on its registry port/);
    assert.match(
      doctor.output,
      new RegExp(`✓ ref .*resolves to ${image.image.manifest.digest} \\(held here, 1 peers advertise it\\)`),
    );
  });
});
