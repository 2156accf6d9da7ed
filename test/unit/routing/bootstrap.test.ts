import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { searchDomains } from '../../../src/main/routing/bootstrap.js';

describe('searchDomains', () => {
  it('reads the last search or domain line of resolv.conf, as glibc does', () => {
    const pod =
      'search shoal.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';
    assert.deepEqual(searchDomains(pod), ['shoal.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
    assert.deepEqual(searchDomains('domain corp.example.\n'), ['corp.example']);
    assert.deepEqual(searchDomains('search a.example\nsearch b.example c.example\n'), [
      'b.example',
      'c.example',
    ]);
    assert.deepEqual(searchDomains('nameserver 1.1.1.1\n'), []);
    assert.deepEqual(searchDomains(''), []);
    assert.deepEqual(searchDomains('  search\t x.example   y.example  \n'), ['x.example', 'y.example']);
  });
});
