import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UpstreamRefusedError } from '../../../src/main/errors.js';
import { isRefusedAddress, UpstreamGuard } from '../../../src/main/pullthrough/upstream-guard.js';

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
