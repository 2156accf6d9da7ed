import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './process.js';

/**
 * A self-signed EC certificate made with openssl, as `<dir>/<name>.crt` and `<dir>/<name>.key`: for the
 * registry's TLS listener (with `ip` in its subjectAltName) or the token server's signing key.
 */
export async function selfSignedCert(
  dir: string,
  options: { name?: string; cn?: string; ip?: string } = {},
): Promise<{ cert: string; key: string }> {
  const name = options.name ?? 'tls';
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const ip = options.ip;
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${options.cn ?? ip ?? 'shoal-test'}`,
    ...(ip === undefined ? [] : ['-addext', `subjectAltName=IP:${ip}`]),
  ]);
  return { cert, key };
}

/**
 * A test CA (`<dir>/ca.crt`, `<dir>/ca.key`) and a server certificate it signed for `dns` names and `ip`
 * addresses (`<dir>/<name>.crt`, `<dir>/<name>.key`): what an admission webhook's Secret holds, with the CA
 * as the webhook configuration's caBundle.
 */
export async function caSignedCert(
  dir: string,
  options: { name?: string; dns?: readonly string[]; ip?: readonly string[] },
): Promise<{ ca: string; cert: string; key: string }> {
  const ca = await selfSignedCert(dir, { name: 'ca', cn: 'shoal test CA' });
  const name = options.name ?? 'server';
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const alt = [...(options.dns ?? []).map((d) => `DNS:${d}`), ...(options.ip ?? []).map((i) => `IP:${i}`)];
  await writeFile(ext, `subjectAltName=${alt.join(',')}\nextendedKeyUsage=serverAuth\n`);
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-new', ...curve, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    '-extfile',
    ext,
  ]);
  return { ca: ca.cert, cert, key };
}
