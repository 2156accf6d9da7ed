import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { type Child, waitFor } from '../harness/process.js';
import { caSignedCert, secretVolume } from '../harness/tls.js';
import { removeDir, shortTempDir } from '../harness/tmp.js';
import { startWebhook } from '../harness/webhook.js';

const NAME = 'shoal-webhook.shoal.svc';

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: NAME, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

const fingerprintOf = async (file: string): Promise<string> =>
  new X509Certificate(await readFile(file)).fingerprint256;

/** `shoal webhook` at its defaults, on the files of a Secret volume. */
const webhookOn = (volume: string) =>
  startWebhook(['--webhook-tls-cert', join(volume, 'tls.crt'), '--webhook-tls-key', join(volume, 'tls.key')]);

const status = async (port: number, path: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: NAME, rejectUnauthorized: false }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('end', () => resolve(Number(text.split(' ')[1])));
    socket.on('error', reject);
  });

// cert-manager renews the webhook's certificate into the Secret its pods mount, and the kubelet swaps the
// volume's files in place. The webhook must serve the new certificate without a restart: until this
// change the old one was served until the pod restarted, and once it expired the configuration failed
// open and pinning stopped silently.
describe('shoal webhook: its certificate renews under it', { timeout: 60_000 }, () => {
  let dir: string;
  let first: { cert: string; key: string };
  let second: { cert: string; key: string };
  let webhook: { child: Child; port: number } | undefined;

  before(async () => {
    dir = await shortTempDir('shoal-webhook-renew');
    first = await caSignedCert(join(dir, 'one'), { dns: [NAME] });
    second = await caSignedCert(join(dir, 'two'), { dns: [NAME] });
  });
  after(async () => {
    await webhook?.child.stop();
    await removeDir(dir);
  });

  it('serves a renewed certificate from the next handshake, and keeps the pair in use while the files disagree', async () => {
    const volume = await secretVolume(join(dir, 'volume'));
    await volume.write({ 'tls.crt': first.cert, 'tls.key': first.key });
    webhook = await webhookOn(join(dir, 'volume'));
    const { port, child } = webhook;
    assert.equal(await servedFingerprint(port), await fingerprintOf(first.cert));
    await volume.write({ 'tls.crt': second.cert, 'tls.key': second.key });
    const renewed = await fingerprintOf(second.cert);
    // A watch event, not the minute-long poll, brings it: well within the wait.
    await waitFor(
      'the renewed certificate served',
      async () => (await servedFingerprint(port)) === renewed,
      5000,
    );
    assert.match(child.output, /webhook certificate reloaded/);
    // Half a renewal: the new certificate is there, its key not yet. The pair in use stays.
    await volume.write({ 'tls.crt': first.cert, 'tls.key': second.key });
    await waitFor('the mismatch noticed', async () => /do not hold together yet/.test(child.output), 5000);
    assert.equal(await servedFingerprint(port), renewed);
    assert.equal(await status(port, '/readyz'), 200);
    assert.ok(child.running, 'never restarted');
  });

  it('answers /readyz 503 and logs an error when its certificate has expired, and stays alive', async () => {
    const expired = await caSignedCert(join(dir, 'expired'), {
      dns: [NAME],
      validity: { start: '20200101000000Z', end: '20200102000000Z' },
    });
    const volume = await secretVolume(join(dir, 'expired-volume'));
    await volume.write({ 'tls.crt': expired.cert, 'tls.key': expired.key });
    const stale = await webhookOn(join(dir, 'expired-volume'));
    try {
      assert.match(stale.child.output, /the webhook certificate has expired/);
      assert.equal(await status(stale.port, '/readyz'), 503);
      assert.equal(await status(stale.port, '/livez'), 200);
    } finally {
      await stale.child.stop();
    }
  });
});
