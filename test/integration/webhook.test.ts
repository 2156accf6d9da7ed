import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { pushLayout } from '../harness/images.js';
import { Child, freePort } from '../harness/process.js';
import { DistributionRegistry } from '../harness/registry.js';
import { CLI, pullThroughArgs, ShoalProcess } from '../harness/shoal.js';
import { caSignedCert } from '../harness/tls.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';
import { startWebhook } from '../harness/webhook.js';

interface Answer {
  status: number;
  body: string;
}

/** POSTs `body` to the webhook over HTTPS, trusting only the test CA, as the API server does with caBundle. */
function post(port: number, ca: string, body: string | Buffer, path = '/pods'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
        servername: 'shoal-webhook.shoal.svc',
        headers: { 'Content-Type': 'application/json' },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

type Pod = { spec: Record<string, Array<{ name: string; image: string }>> };

function review(pod: Pod, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'c0ffee00-0000-4000-8000-000000000001',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'apps',
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, ...pod },
      ...extra,
    },
  });
}

interface Response {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  warnings?: string[];
}

function responseOf(answer: Answer): Response {
  assert.equal(answer.status, 200, answer.body);
  const parsed = JSON.parse(answer.body) as { apiVersion: string; kind: string; response: Response };
  assert.equal(parsed.apiVersion, 'admission.k8s.io/v1');
  assert.equal(parsed.kind, 'AdmissionReview');
  assert.equal(parsed.response.uid, 'c0ffee00-0000-4000-8000-000000000001');
  assert.equal(parsed.response.allowed, true);
  return parsed.response;
}

/** Applies a JSONPatch of `replace` operations, as the API server does; a path that does not exist fails. */
function applyPatch(doc: unknown, response: Response): unknown {
  if (response.patch === undefined) return doc;
  assert.equal(response.patchType, 'JSONPatch');
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Array<{
    op: string;
    path: string;
    value: unknown;
  }>;
  const copy = structuredClone(doc) as Record<string, unknown>;
  for (const op of ops) {
    assert.equal(op.op, 'replace');
    const keys = op.path.split('/').slice(1);
    const last = keys.pop() as string;
    let at: Record<string, unknown> = copy;
    for (const key of keys) at = at[key] as Record<string, unknown>;
    assert.ok(last in at, `${op.path} exists`);
    at[last] = op.value;
  }
  return copy;
}

/** A TCP server that accepts connections and never answers: a shoal that hangs. */
async function silentServer(port: number): Promise<{ server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, sockets };
}

// The real webhook process, in front of a real shoal with pull-through, in front of the CNCF registry: the
// digests a pod is pinned to are the ones the registry serves for its tags.
describe('shoal webhook: pins pod image tags to digests', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let registry: DistributionRegistry;
  let shoal: ShoalProcess;
  let tls: { ca: string; cert: string; key: string };
  let ca: string;
  let webhook: { child: Child; port: number };
  let hanging: { child: Child; port: number };
  let silent: { server: Server; sockets: Set<Socket> };
  let reg: string;

  before(async () => {
    dir = await shortTempDir('shoal-webhook');
    image = await smallImage('webhook');
    registry = new DistributionRegistry(join(dir, 'registry'));
    await registry.start();
    reg = registry.host;
    await pushLayout(image.dir, image.tag, reg, 'team/app');
    await pushLayout(image.dir, image.tag, reg, 'library/skipped');
    shoal = new ShoalProcess(pullThroughArgs(join(dir, 'data'), reg));
    await shoal.start();
    tls = await caSignedCert(dir, { dns: ['shoal-webhook.shoal.svc'], ip: ['127.0.0.1'] });
    ca = await readFile(tls.ca, 'utf8');
    const files = ['--webhook-tls-cert', tls.cert, '--webhook-tls-key', tls.key];
    webhook = await startWebhook([
      ...files,
      '--shoal-url',
      shoal.url,
      '--mirrored-registries',
      `http://${reg}`,
      '--registry-filters',
      '/skipped:',
    ]);
    const silentPort = await freePort();
    silent = await silentServer(silentPort);
    hanging = await startWebhook([...files, '--shoal-url', `http://127.0.0.1:${silentPort}`]);
  });

  after(async () => {
    await webhook?.child.stop();
    await hanging?.child.stop();
    for (const socket of silent?.sockets ?? []) socket.destroy();
    silent?.server.close();
    await shoal?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it('pins every tag of a mirrored registry in containers and init containers, and applies cleanly', async () => {
    const digest = image.image.manifest.digest;
    const pinnedAlready = `${reg}/team/app@${digest}`;
    const pod: Pod = {
      spec: {
        initContainers: [{ name: 'init', image: `${reg}/team/app:${image.tag}` }],
        containers: [
          { name: 'app', image: `${reg}/team/app:${image.tag}` },
          { name: 'pinned', image: pinnedAlready },
          { name: 'elsewhere', image: 'registry.example/team/app:1.0' },
          { name: 'filtered', image: `${reg}/library/skipped:${image.tag}` },
        ],
      },
    };
    const response = responseOf(await post(webhook.port, ca, review(pod)));
    assert.equal(response.warnings, undefined);
    const patched = applyPatch({ apiVersion: 'v1', kind: 'Pod', ...pod }, response) as Pod;
    const pinned = `${reg}/team/app:${image.tag}@${digest}`;
    assert.deepEqual(
      patched.spec.initContainers?.map((c) => c.image),
      [pinned],
    );
    assert.deepEqual(
      patched.spec.containers?.map((c) => c.image),
      [pinned, pinnedAlready, 'registry.example/team/app:1.0', `${reg}/library/skipped:${image.tag}`],
    );
    // The digest is the one the registry itself serves for the tag.
    const head = await fetch(`${registry.url}/v2/team/app/manifests/${image.tag}`, {
      method: 'HEAD',
      headers: {
        Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
    assert.equal(head.headers.get('docker-content-digest'), digest);
  });

  it('a debug container added to a running pod is pinned, and nothing else is touched', async () => {
    const pod: Pod = {
      spec: {
        containers: [{ name: 'app', image: `${reg}/team/app:${image.tag}` }],
        ephemeralContainers: [{ name: 'debug', image: `${reg}/team/app:${image.tag}` }],
      },
    };
    const response = responseOf(
      await post(webhook.port, ca, review(pod, { operation: 'UPDATE', subResource: 'ephemeralcontainers' })),
    );
    const patched = applyPatch(pod, response) as Pod;
    assert.equal(patched.spec.containers?.[0]?.image, `${reg}/team/app:${image.tag}`);
    assert.equal(
      patched.spec.ephemeralContainers?.[0]?.image,
      `${reg}/team/app:${image.tag}@${image.image.manifest.digest}`,
    );
  });

  it('a tag the registry does not have is admitted unchanged, with a warning', async () => {
    const pod: Pod = { spec: { containers: [{ name: 'app', image: `${reg}/team/app:no-such-tag` }] } };
    const response = responseOf(await post(webhook.port, ca, review(pod)));
    assert.equal(response.patch, undefined);
    assert.equal(response.warnings?.length, 1);
    assert.match(response.warnings?.[0] ?? '', /no-such-tag left unpinned: shoal at .* answered 404/);
  });

  it('a shoal that never answers costs the resolve timeout (default 2 s), then the pod is admitted unchanged', async () => {
    const pod: Pod = { spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } };
    const started = Date.now();
    const response = responseOf(await post(hanging.port, ca, review(pod)));
    const ms = Date.now() - started;
    assert.equal(response.patch, undefined);
    assert.match(
      response.warnings?.[0] ?? '',
      /^shoal: nginx:1\.27 left unpinned: not resolved within 2000 ms$/,
    );
    // Inside the API server's 5 s timeoutSeconds in k8s/components/webhook.
    assert.ok(ms >= 1900 && ms < 4000, `answered after ${ms} ms`);
  });

  it('a review of another kind is allowed unchanged', async () => {
    const body = JSON.parse(review({ spec: {} })) as { request: Record<string, unknown> };
    body.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    const response = responseOf(await post(webhook.port, ca, JSON.stringify(body)));
    assert.equal(response.patch, undefined);
    assert.equal(response.warnings, undefined);
  });

  it('malformed and oversized reviews get 400, and the webhook keeps serving', async () => {
    for (const body of [
      '{not json',
      '[]',
      '{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}',
    ]) {
      const answer = await post(webhook.port, ca, body);
      assert.equal(answer.status, 400, body);
    }
    const noSpec = JSON.parse(review({ spec: {} })) as { request: { object: unknown } };
    noSpec.request.object = 'a string';
    assert.equal((await post(webhook.port, ca, JSON.stringify(noSpec))).status, 400);
    // Past the default --webhook-max-review-bytes (3 MiB).
    const huge = Buffer.alloc(4 << 20, 0x20);
    const answer = await post(webhook.port, ca, huge);
    assert.equal(answer.status, 400);
    assert.match(answer.body, /over 3145728 bytes/);
    assert.ok(webhook.child.running);
    const pod: Pod = { spec: { containers: [{ name: 'app', image: `${reg}/team/app:${image.tag}` }] } };
    assert.ok(responseOf(await post(webhook.port, ca, review(pod))).patch !== undefined);
  });
});

describe('shoal webhook: misconfiguration is loud', () => {
  it('refuses to start without its certificate, naming the flags', async () => {
    const child = new Child(process.execPath, [
      CLI,
      'webhook',
      '--webhook-addr',
      `127.0.0.1:${await freePort()}`,
    ]);
    assert.equal(await child.finished, 2);
    assert.match(child.output, /--webhook-tls-cert and --webhook-tls-key are required/);
  });

  it('refuses a key that does not match the certificate', async () => {
    const dir = await shortTempDir('shoal-webhook-bad');
    try {
      const one = await caSignedCert(dir, { name: 'one', ip: ['127.0.0.1'] });
      const other = await caSignedCert(dir, { name: 'other', ip: ['127.0.0.1'] });
      const child = new Child(process.execPath, [
        CLI,
        'webhook',
        '--webhook-addr',
        `127.0.0.1:${await freePort()}`,
        '--webhook-tls-cert',
        one.cert,
        '--webhook-tls-key',
        other.key,
      ]);
      assert.equal(await child.finished, 2);
      assert.match(child.output, /--webhook-tls-key: the key does not match --webhook-tls-cert/);
    } finally {
      await removeDir(dir);
    }
  });
});
