import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Child, freePort, waitFor } from '../harness/process.js';
import { ShoalProcess } from '../harness/shoal.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

const readyz = async (node: ShoalProcess): Promise<number> => (await fetch(`${node.url}/readyz`)).status;

describe('DNS bootstrap: a headless-Service-style name with several A records', { timeout: 120_000 }, () => {
  const NAME = 'peers.shoal.test';
  const HOSTS = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];
  let dir: string;
  let dnsmasq: Child;
  const nodes: ShoalProcess[] = [];

  before(async () => {
    dir = await shortTempDir('shoal-dns');
    const dnsPort = await freePort();
    dnsmasq = new Child('dnsmasq', [
      '--no-daemon',
      '--conf-file=/dev/null',
      `--port=${dnsPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--user=root',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ...HOSTS.map((host) => `--host-record=${NAME},${host}`),
    ]);
    // Every node uses the same router port on its own address, as a DaemonSet does on its own node IP.
    const routerPort = await freePort();
    for (const [i, host] of HOSTS.entries()) {
      nodes.push(
        new ShoalProcess(
          [
            '--store',
            'embedded',
            '--data-dir',
            join(dir, `n${i}`),
            '--router-addr',
            `${host}:${routerPort}`,
            '--bootstrap-kind',
            'dns',
            '--dns-bootstrap-domain',
            NAME,
            '--dns-bootstrap-resolver',
            `127.0.0.1:${dnsPort}`,
          ],
          { host },
        ),
      );
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
