import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dnsBootstrap, searchDomains } from '../../src/main/routing/bootstrap.js';
import { Child, freePort, waitFor } from '../harness/process.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const readyz = async (node: ShoalProcess): Promise<number> => (await fetch(`${node.url}/readyz`)).status;

/** A node on its own loopback address that joins through `name`, as a DaemonSet pod does (defaults otherwise). */
function dnsNode(
  dataDir: string,
  host: string,
  routerPort: number,
  name: string,
  dnsPort: number,
): ShoalProcess {
  return new ShoalProcess(
    [
      '--store',
      'embedded',
      '--data-dir',
      dataDir,
      '--router-addr',
      `${host}:${routerPort}`,
      '--bootstrap-kind',
      'dns',
      '--dns-bootstrap-domain',
      name,
      '--dns-bootstrap-resolver',
      `127.0.0.1:${dnsPort}`,
    ],
    { host },
  );
}

/** A DNS server on loopback answering `name` with `hosts`, as a headless Service's name is answered. */
function startDnsmasq(dir: string, port: number, name: string, hosts: readonly string[]): Child {
  return new Child('dnsmasq', [
    '--no-daemon',
    '--conf-file=/dev/null',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    '--user=root',
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    ...hosts.map((host) => `--host-record=${name},${host}`),
  ]);
}

describe('DNS bootstrap: a headless-Service-style name with several A records', { timeout: 120_000 }, () => {
  const NAME = 'peers.shoal.test';
  const HOSTS = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];
  let dir: string;
  let dnsmasq: Child;
  const nodes: ShoalProcess[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-dns');
    const dnsPort = await freePort();
    dnsmasq = startDnsmasq(dir, dnsPort, NAME, HOSTS);
    // Every node uses the same router port on its own address, as a DaemonSet does on its own node IP.
    const routerPort = await freePort();
    for (const [i, host] of HOSTS.entries()) {
      nodes.push(dnsNode(join(dir, `n${i}`), host, routerPort, NAME, dnsPort));
    }
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await dnsmasq?.stop();
    await removeDir(dir);
  });

  it('every node finds the others through the name (skipping itself) and becomes ready', async () => {
    await Promise.all(nodes.map((node) => node.start()));
    await waitFor(
      'all DNS-bootstrapped nodes ready',
      async () => (await Promise.all(nodes.map(readyz))).every((s) => s === 200),
      30_000,
    );
  });

  it('a node whose peers are all gone stops being ready', async () => {
    await Promise.all(nodes.slice(1).map((node) => node.stop()));
    await waitFor(
      'lone node not ready',
      async () => (await readyz(nodes[0] as ShoalProcess)) === 503,
      60_000,
    );
  });
});

describe('HTTP bootstrap: /id on one node, polled by another', { timeout: 60_000 }, () => {
  let dir: string;
  const nodes: ShoalProcess[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-http-boot');
    const idPort = await freePort();
    const [routerA, routerB] = [await freePort(), await freePort()];
    nodes.push(
      new ShoalProcess([
        '--store',
        'embedded',
        '--data-dir',
        join(dir, 'a'),
        '--router-addr',
        `127.0.0.1:${routerA}`,
        '--bootstrap-kind',
        'static',
        '--http-bootstrap-addr',
        `127.0.0.1:${idPort}`,
      ]),
      new ShoalProcess([
        '--store',
        'embedded',
        '--data-dir',
        join(dir, 'b'),
        '--router-addr',
        `127.0.0.1:${routerB}`,
        '--bootstrap-kind',
        'http',
        '--http-bootstrap-url',
        `http://127.0.0.1:${idPort}/id`,
      ]),
    );
    await Promise.all(nodes.map((node) => node.start()));
    // /id comes up after the router, which starts after the registry answers /livez.
    let id = '';
    await waitFor('/id served', async () => {
      id = await (await fetch(`http://127.0.0.1:${idPort}/id`)).text();
      return true;
    });
    assert.match(id, new RegExp(`^/ip4/127.0.0.1/tcp/${routerA}/p2p/\\w+`, 'm'));
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await removeDir(dir);
  });

  it('the polling node joins and both become ready', async () => {
    await waitFor(
      'both ready',
      async () => (await Promise.all(nodes.map(readyz))).every((s) => s === 200),
      30_000,
    );
  });
});

describe('a cluster of one: the bootstrap names only this node', { timeout: 60_000 }, () => {
  const NAME = 'one.shoal.test';
  const HOST = '127.0.0.21';
  let dir: string;
  let dnsmasq: Child;
  let node: ShoalProcess;

  before(async () => {
    dir = await shortTempDir('shoal-one');
    const dnsPort = await freePort();
    dnsmasq = startDnsmasq(dir, dnsPort, NAME, [HOST]);
    // Defaults throughout (join timeout 10 s): what a one-node cluster's DaemonSet pod runs.
    node = dnsNode(join(dir, 'n'), HOST, await freePort(), NAME, dnsPort);
    await node.start();
  });

  after(async () => {
    await node?.stop();
    await dnsmasq?.stop();
    await removeDir(dir);
  });

  it('is ready without waiting for a peer (Spegel #1120), and stays ready', async (t) => {
    const started = Date.now();
    await waitFor('lone node ready', async () => (await readyz(node)) === 200, 30_000);
    const ms = Date.now() - started;
    t.diagnostic(`ready ${ms} ms after /livez answered`);
    // Far below the 10 s join wait a node with peers named would sit through before giving up.
    assert.ok(ms < 5000, `ready after ${ms} ms`);
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(await readyz(node), 200);
    }
  });
});

// In a pod, /etc/resolv.conf searches `<ns>.svc.<cluster domain>`, `svc.<cluster domain>` and the cluster
// domain. The manifests name the bootstrap Service without the cluster domain, which clusters set as they
// like (cluster.local is only the default); shoal completes it with the search domains, as the system
// resolver would, since Node's dns.resolve* does not.
describe('DNS bootstrap: a name completed by the search domains', { timeout: 60_000 }, () => {
  let dir: string;
  let dnsmasq: Child;
  let dnsPort = 0;

  before(async () => {
    dir = await shortTempDir('shoal-dns-search');
    dnsPort = await freePort();
    dnsmasq = startDnsmasq(dir, dnsPort, 'shoal-bootstrap.shoal.svc.corp.example', [
      '127.0.0.21',
      '127.0.0.22',
    ]);
    await waitFor('dnsmasq', async () => dnsmasq.running, 5000);
  });

  after(async () => {
    await dnsmasq?.stop();
    await removeDir(dir);
  });

  it('finds shoal-bootstrap.shoal.svc under a cluster domain that is not cluster.local', async () => {
    const search = async () =>
      searchDomains(
        'nameserver 10.96.0.10\nsearch shoal.svc.corp.example svc.corp.example corp.example\noptions ndots:5\n',
      );
    const bootstrap = dnsBootstrap('shoal-bootstrap.shoal.svc', 5001, 2000, `127.0.0.1:${dnsPort}`, search);
    await waitFor('the name resolved', async () => (await bootstrap()).length === 2, 10_000);
    assert.deepEqual((await bootstrap()).sort(), ['/ip4/127.0.0.21/tcp/5001', '/ip4/127.0.0.22/tcp/5001']);
    // A name with a trailing dot is complete: never searched.
    const absolute = dnsBootstrap('shoal-bootstrap.shoal.svc.', 5001, 2000, `127.0.0.1:${dnsPort}`, search);
    assert.deepEqual(await absolute(), []);
  });
});
