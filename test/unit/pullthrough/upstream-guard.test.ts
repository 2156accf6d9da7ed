import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UpstreamRefusedError } from '../../../src/main/errors.js';
import {
  embeddedIpv4,
  isRefusedAddress,
  UpstreamGuard,
} from '../../../src/main/pullthrough/upstream-guard.js';

describe('UpstreamGuard', () => {
  it('classifies loopback, link-local, private and special addresses as refused', () => {
    for (const address of [
      '127.0.0.1',
      '127.9.9.9',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
      'not-an-address',
    ]) {
      assert.equal(isRefusedAddress(address), true, address);
    }
    for (const address of ['8.8.8.8', '172.32.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isRefusedAddress(address), false, address);
    }
  });

  it('refuses every IPv6 spelling of a refused IPv4 address, and no spelling of a public one', () => {
    for (const address of [
      '::ffff:7f00:9', // mapped, as the URL parser writes [::ffff:127.0.0.9]
      '::7f00:9', // IPv4-compatible
      '::127.0.0.9',
      '0:0:0:0:0:ffff:7f00:0009',
      '::ffff:0:7f00:9', // SIIT
      '::ffff:a9fe:a9fe', // 169.254.169.254
      '64:ff9b::7f00:9', // NAT64
      '64:ff9b::a00:1', // NAT64 of 10.0.0.1
      '64:ff9b:1::1', // local-use NAT64: refused whole
      '2002:7f00:9::1', // 6to4
      '2002:c0a8:101::', // 6to4 of 192.168.1.1
      '2001:0:4136:e378:8000:63bf:80ff:fff6', // Teredo, client 127.0.0.9 inverted
      'fec0::1',
      '2001:db8::1',
    ]) {
      assert.equal(isRefusedAddress(address), true, address);
    }
    for (const address of ['::ffff:808:808', '64:ff9b::808:808', '2002:808:808::1', '2001:4860::8888']) {
      assert.equal(isRefusedAddress(address), false, address);
    }
    assert.equal(embeddedIpv4('::ffff:7f00:9'), '127.0.0.9');
    assert.equal(embeddedIpv4('2001:0:4136:e378:8000:63bf:80ff:fff6'), '127.0.0.9');
    assert.equal(embeddedIpv4('2606:4700::1111'), undefined);
  });

  it('lets pull-through reach only the registries named', () => {
    const guard = new UpstreamGuard({ registries: ['docker.io', '127.0.0.1:5000'] });
    guard.check('docker.io');
    guard.check('127.0.0.1:5000');
    for (const registry of ['ghcr.io', '127.0.0.1:5001', '169.254.169.254', 'docker.io.evil.example']) {
      assert.throws(() => guard.check(registry), UpstreamRefusedError, registry);
    }
  });

  it('refuses a hostname that resolves only to refused addresses, unless the operator allowed it', async () => {
    const guard = new UpstreamGuard({ registries: ['localhost:5000'] });
    const resolve = (g: UpstreamGuard, host: string) =>
      new Promise<unknown>((done) => g.lookup(host, { all: true }, (err, address) => done(err ?? address)));
    assert.ok((await resolve(guard, 'localhost')) instanceof UpstreamRefusedError);
    const allowed = new UpstreamGuard({ registries: ['localhost:5000'], privateHosts: ['localhost'] });
    const addresses = (await resolve(allowed, 'localhost')) as Array<{ address: string }>;
    assert.ok(addresses.length > 0 && addresses.every((entry) => isRefusedAddress(entry.address)));
  });

  it('lets a token realm live at a named registry’s address, and nowhere private besides', async () => {
    const guard = new UpstreamGuard({ registries: ['127.0.0.1:5000'] });
    await guard.checkUrl(new URL('http://127.0.0.1:5999/token'));
    await assert.rejects(guard.checkUrl(new URL('http://127.0.0.2:5999/token')), UpstreamRefusedError);
    await assert.rejects(guard.checkUrl(new URL('http://169.254.169.254/latest')), UpstreamRefusedError);
    await assert.rejects(guard.checkUrl(new URL('file:///etc/passwd')), UpstreamRefusedError);
    await assert.rejects(guard.checkUrl(new URL('http://localhost:5999/token')), UpstreamRefusedError);
  });
});
