import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SingleImageFixture, smallImage } from '../harness/fixtures.js';
import { Child, freePort } from '../harness/process.js';
import { CLI, importLayout, ShoalProcess } from '../harness/shoal.js';
import { selfSignedCert } from '../harness/tls.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';

function httpsGet(url: string, ca: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

async function exitOf(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = new Child(process.execPath, [CLI, 'registry', ...args]);
  return { code: await child.finished, output: child.output };
}

// The TLS listener (`--registry-tls-*`) for clients that try https first: a real shoal process, checked with
// a certificate made by openssl, and every way its flags can be wrong.
describe('the registry over TLS', { timeout: 120_000 }, () => {
  let dir: string;
  let image: SingleImageFixture;
  let files: { cert: string; key: string };
  let node: ShoalProcess;
  let tlsPort: number;

  before(async () => {
    dir = await shortTempDir('shoal-tls');
    image = await smallImage('tls');
    files = await selfSignedCert(dir, { ip: '127.0.0.1' });
    await importLayout(join(dir, 'data'), image.dir, 'docker.io', 'tls/app');
    tlsPort = await freePort();
    node = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(dir, 'data'),
      '--registry-tls-addr',
      `127.0.0.1:${tlsPort}`,
      '--registry-tls-cert',
      files.cert,
      '--registry-tls-key',
      files.key,
    ]);
    await node.start();
  });

  after(async () => {
    await node?.stop();
    await removeDir(dir);
  });

  it('serves the same API over TLS as over plain HTTP, blobs included', async () => {
    const ca = await readFile(files.cert, 'utf8');
    assert.equal((await httpsGet(`https://127.0.0.1:${tlsPort}/v2/`, ca)).status, 200);
    const layer = image.image.layers[0];
    assert.ok(layer !== undefined);
    const blob = await httpsGet(`https://127.0.0.1:${tlsPort}/v2/tls/app/blobs/${layer.digest}`, ca);
    assert.equal(blob.status, 200);
    assert.equal(`sha256:${createHash('sha256').update(blob.body).digest('hex')}`, layer.digest);
    assert.equal((await fetch(`${node.url}/v2/`)).status, 200, 'plain HTTP still serves');
  });

  it('refuses to start, naming the flag, when the TLS files are wrong', async () => {
    await mkdir(join(dir, 'other'), { recursive: true });
    const other = await selfSignedCert(join(dir, 'other'), { ip: '127.0.0.9' });
    await writeFile(join(dir, 'garbage.pem'), 'not a certificate\n');
    const base = ['--store', 'embedded', '--data-dir', join(dir, 'bad')];
    for (const [args, message] of [
      [['--registry-tls-cert', files.cert], /^shoal: --registry-tls-cert and --registry-tls-key: give both/],
      [['--registry-tls-key', files.key], /^shoal: --registry-tls-cert and --registry-tls-key: give both/],
      [
        ['--registry-tls-cert', join(dir, 'none.pem'), '--registry-tls-key', files.key],
        /^shoal: --registry-tls-cert: cannot read/,
      ],
      [
        ['--registry-tls-cert', join(dir, 'garbage.pem'), '--registry-tls-key', files.key],
        /^shoal: --registry-tls-cert: .* holds no PEM certificate/,
      ],
      [
        ['--registry-tls-cert', files.cert, '--registry-tls-key', join(dir, 'garbage.pem')],
        /^shoal: --registry-tls-key: .* holds no PEM private key/,
      ],
      [
        ['--registry-tls-cert', files.cert, '--registry-tls-key', other.key],
        /^shoal: --registry-tls-key: the key does not match/,
      ],
    ] as const) {
      const result = await exitOf([...base, ...args]);
      assert.equal(result.code, 2, result.output);
      assert.match(result.output.trim(), message);
      assert.ok(!result.output.includes('PRIVATE KEY'), 'the key is never printed');
    }
  });
});
