import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { MultiaddrConnection, PeerId } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { InboundGate } from '../../../src/main/routing/libp2p/inbound-gate.js';

const PEER = {} as PeerId;

function connection(address: string): MultiaddrConnection & { close(): void } {
  const events = new EventTarget();
  return Object.assign(events, {
    remoteAddr: multiaddr(address),
    close: () => events.dispatchEvent(new Event('close')),
  }) as unknown as MultiaddrConnection & { close(): void };
}

describe('InboundGate: connections mid-handshake per address', () => {
  it('refuses the connection over the limit from one address, and only from that one', () => {
    const gate = new InboundGate(2, 4000);
    assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/1')), false);
    assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/2')), false);
    assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/3')), true);
    assert.equal(gate.denyInboundConnection(connection('/ip6/fd00::1/tcp/3')), false);
    assert.equal(gate.refused, 1);
    assert.equal(gate.pendingFrom('10.0.0.9'), 2);
  });

  it('frees a slot when a handshake completes or the connection closes', () => {
    const gate = new InboundGate(1, 4000);
    const upgraded = connection('/ip4/10.0.0.9/tcp/1');
    assert.equal(gate.denyInboundConnection(upgraded), false);
    assert.equal(gate.denyInboundUpgradedConnection(PEER, upgraded), false);
    const closed = connection('/ip4/10.0.0.9/tcp/2');
    assert.equal(gate.denyInboundConnection(closed), false);
    closed.close();
    // A second release of the same connection changes nothing.
    upgraded.close();
    assert.equal(gate.pendingFrom('10.0.0.9'), 0);
    assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/3')), false);
    assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/4')), true);
  });

  it('frees a slot after the hold time even when libp2p never says how the handshake ended', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const gate = new InboundGate(1, 4000);
      assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/1')), false);
      mock.timers.tick(3999);
      assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/2')), true);
      mock.timers.tick(1);
      assert.equal(gate.denyInboundConnection(connection('/ip4/10.0.0.9/tcp/3')), false);
    } finally {
      mock.timers.reset();
    }
  });
});
