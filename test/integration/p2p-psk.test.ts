import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { freePort, waitFor } from '../harness/process.js';
import { importLayout, ShoalProcess, staticP2pArgs } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const NS = '127.0.0.1:5000';

const readyz = async (node: ShoalProcess): Promise<number> => (await fetch(`${node.url}/readyz`)).status;

async function writeKey(path: string): Promise<string> {
  await writeFile(path, `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`, {
    mode: 0o600,
  });
  return path;
}

// Regression (security): any process that reached the router port could join the DHT, advertise content
// and be chosen as an owner or a peer. With --p2p-psk-file, three nodes share a key; a fourth with another
// key and a fifth with none bootstrap through the same node and hold an image the three do not. Neither
// ever becomes ready, is ever a member of the three, or serves them anything; each one's content stays
// its own. Every timing flag is at its default.
describe('private network: only nodes with the key are members', { timeout: 180_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let outsiders: SingleImageFixture;
  const members: ShoalProcess[] = [];
  const strangers: ShoalProcess[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-psk');
    image = await smallImage('psk-members');
    outsiders = await smallImage('psk-outsiders');
    const key = await writeKey(join(dir, 'cluster.key'));
    const other = await writeKey(join(dir, 'other.key'));
    const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    const args = (i: number): string[] => [
      '--store',
      'embedded',
      ...staticP2pArgs({
        dataDir: join(dir, `n${i}`),
        routerPort: ports[i] as number,
        bootstrapPort: ports[0] as number,
      }),
    ];
    await importLayout(join(dir, 'n0'), image.dir, NS, 'members');
    for (const i of [3, 4]) await importLayout(join(dir, `n${i}`), outsiders.dir, NS, 'outsiders');
    // The members mirror one registry: peer requests are filtered like any other, so they must name it.
    const mirrored = ['--mirrored-registries', `http://${NS}`];
    for (let i = 0; i < 3; i++)
      members.push(new ShoalProcess([...args(i), ...mirrored, '--p2p-psk-file', key]));
    strangers.push(new ShoalProcess([...args(3), '--p2p-psk-file', other]));
    strangers.push(new ShoalProcess(args(4)));
    for (const node of [...members, ...strangers]) await node.start();
  });

  after(async () => {
    await Promise.all([...members, ...strangers].map((node) => node.stop()));
    await removeDir(dir);
  });

  it('the members become ready and serve each other', async () => {
    for (const node of members) await node.waitReady();
    const manifest = `/v2/members/manifests/${image.tag}?ns=${NS}`;
    await waitFor(
      'the tag from node 3',
      async () => (await fetch(`${members[2]?.url}${manifest}`)).status === 200,
      30_000,
    );
    // Regression: peer requests by digest named no registry, so a peer mirroring a list refused them.
    for (const blob of [image.image.manifest, image.image.config, ...image.image.layers]) {
      const kind = blob === image.image.manifest ? 'manifests' : 'blobs';
      const response = await fetch(`${members[2]?.url}/v2/members/${kind}/${blob.digest}?ns=${NS}`);
      assert.equal(response.status, 200, `${kind} ${blob.digest}`);
      const bytes = Buffer.from(await response.arrayBuffer());
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
    }
  });

  it('a node with another key, or none, never becomes ready, never a member, and serves nothing to members', async () => {
    const outsiderManifest = `/v2/outsiders/manifests/${outsiders.tag}?ns=${NS}`;
    const memberManifest = `/v2/members/manifests/${image.tag}?ns=${NS}`;
    // Past the default join timeout (10 s), when a node that had connected anywhere would count as joined.
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      for (const stranger of strangers) assert.equal(await readyz(stranger), 503);
      for (const node of members) {
        assert.equal(await node.metric('shoal_router_members'), 2, 'members count only each other');
      }
      await sleep(1000);
    }
    for (const node of members) {
      assert.equal((await fetch(`${node.url}${outsiderManifest}`)).status, 404, 'nothing from a stranger');
    }
    for (const stranger of strangers) {
      assert.equal(await stranger.metric('shoal_router_members'), 0);
      assert.equal((await fetch(`${stranger.url}${memberManifest}`)).status, 404, 'nothing to a stranger');
    }
    assert.match(strangers[1]?.output ?? '', /no private network key/);
  });
});
