import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Containerd } from '../harness/containerd.js';
import { blobFile, flipByte, sliceDigest } from '../harness/corrupt.js';
import { multiLayerImage, type SingleImageFixture } from '../harness/fixtures.js';
import { type OciDescriptor, pushLayout } from '../harness/images.js';
import { freePort, waitFor } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import {
  configureMirror,
  containerdStoreArgs,
  importLayout,
  ShoalProcess,
  staticP2pArgs,
} from '../harness/shoal.js';
import { HttpTap, type TappedResponse } from '../harness/tap.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const DIGEST_IN_PATH = /\/(blobs|manifests)\/(sha256:[0-9a-f]{64})/;
/** Where the tap listens: an address of its own. */
const TAP_HOST = '127.0.0.7';

// All real: a liar (shoal, embedded store) holds the image with one layer corrupted in the middle and another
// in its last byte. A node (containerd + its own shoal) pulls the image through its shoal, which finds the
// liar through the DHT. Every byte between containerd and shoal passes a tap that records each response.
describe('e2e: containerd pulls through shoal while the only peer lies', { timeout: 600_000 }, () => {
  let dir: string;
  let registry: DistributionRegistry;
  let containerd: Containerd;
  let image: SingleImageFixture;
  let tap: HttpTap;
  const shoals: ShoalProcess[] = [];
  const repository = 'liar/app';
  const corrupted = (): OciDescriptor[] => [image.image.layers[2], image.image.layers[3]] as OciDescriptor[];

  before(async () => {
    dir = await shortTempDir('shoal-liar-e2e');
    image = await multiLayerImage();
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, repository);
    const liarData = join(dir, 'liar');
    await importLayout(liarData, image.dir, registry.host, repository);
    const [middle, end] = corrupted() as [OciDescriptor, OciDescriptor];
    await flipByte(blobFile(liarData, middle), middle.size >> 1);
    await flipByte(blobFile(liarData, end), end.size - 1);
    containerd = new Containerd(join(dir, 'node'));
    await containerd.start();
    const routerPorts = await Promise.all([freePort(), freePort()]);
    const p2p = (name: string, i: number) =>
      staticP2pArgs({
        dataDir: join(dir, name),
        routerPort: routerPorts[i] as number,
        bootstrapPort: routerPorts[0] as number,
      });
    shoals.push(new ShoalProcess(['--store', 'embedded', ...p2p('liar', 0)]));
    shoals.push(new ShoalProcess([...containerdStoreArgs(containerd), ...p2p('node-shoal', 1)]));
    await Promise.all(shoals.map((shoal) => shoal.start()));
    const nodeShoal = shoals[1] as ShoalProcess;
    // Every byte between containerd and its shoal passes the tap, on an address of its own.
    tap = new HttpTap({ host: nodeShoal.host, port: nodeShoal.port }, { host: TAP_HOST });
    await tap.start();
    await configureMirror(containerd.hostsDir, registry.url, tap.url);
    try {
      await waitFor(
        'the corrupt layers found through the liar',
        async () => {
          const heads = corrupted().map((blob) =>
            fetch(`${nodeShoal.url}/v2/${repository}/blobs/${blob.digest}?ns=${registry.host}`, {
              method: 'HEAD',
              signal: AbortSignal.timeout(5000),
            }),
          );
          return (await Promise.all(heads)).every((head) => head.status === 200);
        },
        60_000,
      );
    } catch (err) {
      // Seen once on a loaded CI run: keep what both nodes said, to tell discovery from serving.
      const logs = shoals.map((shoal, i) => `--- node ${i}:\n${shoal.output.slice(-3000)}`).join('\n');
      throw new Error(`${(err as Error).message}\n${logs}`);
    }
  });

  after(async () => {
    await tap?.stop();
    await Promise.all(shoals.map((shoal) => shoal.stop()));
    await Promise.all([containerd?.stop(), registry?.stop()]);
    await removeDir(dir);
  });

  it('containerd ends with correct content and shoal never completes a wrong body', async (t) => {
    const ref = `${registry.host}/${repository}:${image.tag}`;
    // containerd resumes a cut body with Range (from upstream, once shoal has set the liar aside) and keeps
    // the bytes it already had, so its own digest check refuses that layer. Like the kubelet, the test pulls
    // again after a pause: the liar is quarantined by then, so the retry must succeed.
    let attempts = 0;
    const failures: string[] = [];
    for (;;) {
      attempts++;
      try {
        await containerd.pull(ref);
        break;
      } catch (err) {
        failures.push(/ctr: .*/.exec(String(err))?.[0] ?? String(err));
        assert.match(
          String(err),
          /unexpected commit digest/,
          'only containerd’s own digest check may fail a pull',
        );
        assert.ok(attempts <= corrupted().length, `still failing:\n${failures.join('\n')}`);
        // The kubelet backs off 10 s before its first retry, and containerd's GC drops the refused ingest in
        // that time. A 2 s pause was not always enough: once, the same refused ingest failed three pulls in a
        // row (the same wrong digest each time), so the test waits as long as the kubelet does.
        await sleep(10_000);
      }
    }
    t.diagnostic(`pull attempts: ${attempts}`);
    assert.equal((await containerd.images()).get(ref), image.image.manifest.digest);
    const content = await containerd.contentDigests();
    for (const blob of [image.image.config, ...image.image.layers])
      assert.ok(content.has(blob.digest), blob.digest);

    const byDigest = new Map(
      [image.image.manifest, image.image.config, ...image.image.layers].map((blob) => [blob.digest, blob]),
    );
    const bodies = tap.responses.filter(
      (response) => response.method === 'GET' && DIGEST_IN_PATH.test(response.path),
    );
    t.diagnostic(
      bodies
        .map(
          (r) =>
            `${r.status} ${r.path.split('?')[0]} ${r.complete ? 'complete' : 'CUT'} ${r.received}/${r.length}`,
        )
        .join('\n'),
    );
    for (const response of bodies.filter((r: TappedResponse) => r.complete && r.status < 300)) {
      const digest = DIGEST_IN_PATH.exec(response.path)?.[2] as string;
      const blob = byDigest.get(digest);
      assert.ok(blob, `a response for ${digest}`);
      const range = /^bytes (\d+)-(\d+)\/\d+$/.exec(response.headers.get('content-range') ?? '');
      const expected =
        range === null ? digest : await sliceDigest(image.dir, blob, Number(range[1]), Number(range[2]));
      assert.equal(response.sha256, expected, `complete ${response.status} for ${response.path}`);
    }
    const cut = bodies.filter((response) => !response.complete && response.status === 200);
    assert.ok(
      cut.some((response) => corrupted().some((blob) => response.path.includes(blob.digest))),
      'the liar was asked and its corrupt body was cut off',
    );
    const nodeShoal = shoals[1] as ShoalProcess;
    assert.ok((await nodeShoal.metric('shoal_peer_corrupt_total{kind="blob"}')) >= 1);
    assert.ok((await nodeShoal.metric('shoal_peer_quarantines_total{reason="corrupt"}')) >= 1);
  });
});
