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
