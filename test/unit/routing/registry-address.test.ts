import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { multiaddr } from '@multiformats/multiaddr';
import {
  isRegistryAddress,
  registryAddresses,
  registryOrigin,
  remoteHost,
} from '../../../src/main/routing/libp2p/registry-address.js';

const ma = (text: string) => multiaddr(text);

describe('registry addresses announced beside the router', () => {
  it('pairs each TCP router address with the registry port, once, and skips the rest', () => {
    const announced = registryAddresses(
      [
        ma('/ip4/10.0.0.5/tcp/5001/p2p/12D3KooWEQFd7jSWMV11VzBBurWZh1eJwE9Lba1L1poZSLbiEWJ3'),
        ma('/ip4/10.0.0.5/tcp/5001'),
        ma('/ip6/::1/tcp/5001'),
        ma('/ip4/10.0.0.5/tcp/5000/http'),
        ma('/ip4/10.0.0.5/udp/5001/quic-v1'),
      ],
      5000,
    ).map(String);
    assert.deepEqual(announced, ['/ip4/10.0.0.5/tcp/5000/http', '/ip6/::1/tcp/5000/http']);
    assert.ok(isRegistryAddress(ma('/ip4/10.0.0.5/tcp/5000/http')));
    assert.ok(!isRegistryAddress(ma('/ip4/10.0.0.5/tcp/5001')));
  });

  it('reaches a connected peer on the IP of its connection, with its announced port', () => {
    const addresses = [ma('/ip4/127.0.0.1/tcp/5000/http'), ma('/ip4/10.0.0.5/tcp/5000/http')];
    assert.equal(registryOrigin(addresses, '10.0.0.5'), 'http://10.0.0.5:5000');
    // Behind an address it did not announce (it listens on every interface): that IP, the announced port.
    assert.equal(registryOrigin(addresses, '192.168.1.9'), 'http://192.168.1.9:5000');
    assert.equal(registryOrigin([ma('/ip6/fd00::5/tcp/5000/http')], 'fd00::5'), 'http://[fd00::5]:5000');
  });

  it('unconnected, prefers an address that is not loopback (which would name this host)', () => {
    const addresses = [ma('/ip4/127.0.0.1/tcp/5000/http'), ma('/ip4/10.0.0.5/tcp/5000/http')];
    assert.equal(registryOrigin(addresses), 'http://10.0.0.5:5000');
    assert.equal(registryOrigin([ma('/ip4/127.0.0.1/tcp/5000/http')]), 'http://127.0.0.1:5000');
  });

  it('says nothing for a peer that announced no registry address (a node of the previous version)', () => {
    assert.equal(registryOrigin([ma('/ip4/10.0.0.5/tcp/5001')], '10.0.0.5'), undefined);
    assert.equal(remoteHost(ma('/ip4/10.0.0.5/tcp/40000')), '10.0.0.5');
    assert.equal(remoteHost(undefined), undefined);
  });
});
