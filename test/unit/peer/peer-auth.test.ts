import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeerUnauthorizedError } from '../../../src/main/errors.js';
import { PeerAuth, type SignedRequest } from '../../../src/main/peer/peer-auth.js';
import { PEER_ID_HEADER, PEER_SIGNATURE_HEADER, PEER_TIME_HEADER } from '../../../src/main/peer/protocol.js';
import { MemoryNetwork, MemoryRouter } from '../../../src/main/routing/memory.js';

async function cluster(): Promise<{
  a: MemoryRouter;
  b: MemoryRouter;
  c: MemoryRouter;
  stranger: MemoryRouter;
}> {
  const network = new MemoryNetwork();
  const make = (id: string, net = network) =>
    new MemoryRouter({ network: net }, { id, registry: `http://${id}` });
  const [a, b, c] = [make('a'), make('b'), make('c')];
  const stranger = make('stranger', new MemoryNetwork());
  for (const router of [a, b, c, stranger]) await router.start();
  return { a, b, c, stranger };
}

const request: SignedRequest = {
  method: 'GET',
  target: '/v2/x/blobs/sha256:1?ns=docker.io',
  range: 'bytes=0-9',
  mirrored: true,
  ownerFetch: false,
};

function claimOf(headers: Record<string, string>) {
  return {
    id: headers[PEER_ID_HEADER] ?? '',
    time: headers[PEER_TIME_HEADER] ?? '',
    signature: headers[PEER_SIGNATURE_HEADER] ?? '',
  };
}

describe('PeerAuth', () => {
  it('proves a member’s request to the node it was signed for, and nothing else', async () => {
    const { a, b, c, stranger } = await cluster();
    const signed = claimOf(await new PeerAuth({ router: a }).headers('b', request));
    const atB = new PeerAuth({ router: b });
    assert.equal(await atB.verify(signed, request), 'a');
    const refused = (promise: Promise<unknown>) => assert.rejects(promise, PeerUnauthorizedError);
    // Another node, another request, another claim, another time, no claim, a non-member.
    await refused(new PeerAuth({ router: c }).verify(signed, request));
    await refused(atB.verify(signed, { ...request, target: '/v2/x/blobs/sha256:2' }));
    await refused(atB.verify(signed, { ...request, range: undefined }));
    await refused(atB.verify(signed, { ...request, ownerFetch: true }));
    await refused(atB.verify({ ...signed, time: String(Number(signed.time) + 1) }, request));
    await refused(atB.verify({ ...signed, id: 'c' }, request));
    await refused(atB.verify(undefined, request));
    const foreign = claimOf(await new PeerAuth({ router: stranger }).headers('b', request));
    await refused(atB.verify(foreign, request));
  });

  it('refuses a signature outside its time window (a replay later on)', async () => {
    const { a, b } = await cluster();
    const signed = claimOf(await new PeerAuth({ router: a }).headers('b', request));
    // A window of 0 ms (default 60 s) stands in for a replay a minute later without waiting a minute.
    const strict = new PeerAuth({ router: b }, { maxSkewMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await assert.rejects(strict.verify(signed, request), PeerUnauthorizedError);
  });
});
