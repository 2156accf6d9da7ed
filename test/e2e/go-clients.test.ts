import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  type MultiArchFixture,
  multiArchImage,
  type SingleImageFixture,
  smallImage,
} from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { GoClients, type Timed } from '../harness/podman.js';
import { DistributionRegistry } from '../harness/registry.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const REPOSITORY = 'e2e/app';
/** What a Go client through shoal must stay under on loopback; direct, these commands take about 0.2 s. */
const LIMIT_MS = 2000;

function timed(t: TestContext, what: string, result: Timed): Timed {
  t.diagnostic(`${what}: ${result.ms} ms`);
  console.log(`# ${what}: ${result.ms} ms`);
  assert.ok(result.ms < LIMIT_MS, `${what} took ${result.ms} ms (limit ${LIMIT_MS})`);
  return result;
}

// Real podman and skopeo (containers/image, which tries https first) through one shoal that mirrors two
// registries, each named in the mirror path: port 80 of 127.0.0.2 and of 127.0.0.3, serving different
// images under the same name. Pulled once with the registries up, then again with both stopped. Every shoal
// flag but addresses and the two registries is at its default: the clients reach the plain registry port,
// whose answer to their TLS handshake (a plain-HTTP 505) sends them to plain HTTP at once, and which serves
// blob bytes itself.
describe('podman and skopeo through shoal, two registries named in the path', { timeout: 300_000 }, () => {
  let dir: string;
  let a: DistributionRegistry;
  let b: DistributionRegistry;
  let imageA: SingleImageFixture;
  let imageB: SingleImageFixture;
  let multi: MultiArchFixture;
  let node: ShoalProcess;
  let clients: GoClients;
  const mirror = (registry: DistributionRegistry) => `127.0.0.1:${node.port}/${registry.host}`;

  before(async () => {
    dir = await shortTempDir('shoal-go-clients');
    imageA = await smallImage('go-client-a');
    imageB = await smallImage('go-client-b');
    multi = await multiArchImage();
    a = new DistributionRegistry(join(dir, 'a'), { address: '127.0.0.2', port: 80 });
    b = new DistributionRegistry(join(dir, 'b'), { address: '127.0.0.3', port: 80 });
    await Promise.all([a.start(), b.start()]);
    await pushLayout(imageA.dir, imageA.tag, a.host, REPOSITORY);
    await pushLayout(multi.dir, multi.tag, a.host, REPOSITORY);
    await pushLayout(imageB.dir, imageB.tag, b.host, REPOSITORY);
    node = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(dir, 'shoal'),
      '--upstream-fallback',
      '--mirrored-registries',
      `http://${a.host},http://${b.host}`,
      '--insecure-registries',
      `${a.host},${b.host}`,
    ]);
    await node.start();
    clients = new GoClients(join(dir, 'clients'));
    await clients.configure([
      { registry: a.host, mirror: mirror(a) },
      { registry: b.host, mirror: mirror(b) },
    ]);
  });

  after(async () => {
    await node?.stop();
    await a?.stop();
    await b?.stop();
    await removeDir(dir);
  });

  /** Pulls `reference` with podman and returns the digest of the manifest it stored. */
  async function pull(t: TestContext, reference: string): Promise<string> {
    timed(t, `podman pull ${reference}`, await clients.podman(['pull', '-q', reference]));
    const inspected = await clients.podman(['image', 'inspect', '--format', '{{.Digest}}', reference]);
    return inspected.output.trim();
  }

  async function pullAll(t: TestContext): Promise<void> {
    assert.equal(await pull(t, `${a.host}/${REPOSITORY}:small`), imageA.image.manifest.digest);
    assert.equal(
      await pull(t, `${b.host}/${REPOSITORY}:small`),
      imageB.image.manifest.digest,
      'the other registry',
    );
    assert.equal(
      await pull(t, `${a.host}/${REPOSITORY}@${imageA.image.manifest.digest}`),
      imageA.image.manifest.digest,
    );
    // The index: podman picks its platform's manifest from it.
    const platform = multi.images.find((image) => image.manifest.platform?.architecture === 'amd64');
    assert.ok(platform !== undefined);
    await pull(t, `${a.host}/${REPOSITORY}:multi`);
    const stored = await clients.podman([
      'image',
      'inspect',
      '--format',
      '{{.ID}}',
      `${a.host}/${REPOSITORY}:multi`,
    ]);
    assert.ok(stored.output.trim().length > 0);
  }

  async function inspect(t: TestContext): Promise<void> {
    const reference = `docker://127.0.0.1:${node.port}/${a.host}/${REPOSITORY}:small`;
    const result = timed(
      t,
      'skopeo inspect',
      await clients.skopeo(['inspect', '--tls-verify=false', reference]),
    );
    const doc = JSON.parse(result.output) as { Digest: string; RepoTags: string[] };
    assert.equal(doc.Digest, imageA.image.manifest.digest);
    assert.deepEqual([...doc.RepoTags].sort(), ['multi', 'small']);
  }

  it('pulls by tag, by digest and an index, from both registries, each in well under 2 s', async (t) => {
    await pullAll(t);
    // Every manifest and blob came through shoal: podman never fell back to a registry itself.
    for (const registry of [a, b]) {
      const direct = registry.output.split('\n').filter((line) => /useragent="containers\//.test(line));
      assert.deepEqual(direct, [], `podman went to ${registry.host} directly`);
      assert.match(registry.output, /useragent="?shoal-pull-through/);
    }
  });

  it('inspects with skopeo, tag list included (no --no-tags)', async (t) => {
    await inspect(t);
  });

  it('pulls and inspects the same again with both registries stopped', async (t) => {
    await a.stop();
    await b.stop();
    await clients.podman(['rmi', '-a', '-f']);
    await pullAll(t);
    await inspect(t);
  });
});
