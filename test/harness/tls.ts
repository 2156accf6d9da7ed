import { copyFile, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
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
  options: {
    name?: string;
    dns?: readonly string[];
    ip?: readonly string[];
    /** Signed with this validity (openssl's `YYYYMMDDHHMMSSZ`) instead of two days from now: an expired one. */
    validity?: { start: string; end: string };
  },
): Promise<{ ca: string; cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
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
  if (options.validity !== undefined) {
    await signWithDates(dir, { ca, csr, cert, ext }, options.validity);
    return { ca: ca.cert, cert, key };
  }
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

/** `openssl ca`, the one openssl 3.0 command that signs with given dates (x509 -req takes only -days). */
async function signWithDates(
  dir: string,
  files: { ca: { cert: string; key: string }; csr: string; cert: string; ext: string },
  validity: { start: string; end: string },
): Promise<void> {
  const config = join(dir, 'ca.cnf');
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '01\n');
  await writeFile(
    config,
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `database = ${join(dir, 'index.txt')}`,
      `serial = ${join(dir, 'serial')}`,
      `new_certs_dir = ${dir}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  await run('openssl', [
    'ca',
    '-batch',
    '-notext',
    '-config',
    config,
    '-cert',
    files.ca.cert,
    '-keyfile',
    files.ca.key,
    '-in',
    files.csr,
    '-out',
    files.cert,
    '-extfile',
    files.ext,
    '-startdate',
    validity.start,
    '-enddate',
    validity.end,
  ]);
}

/**
 * A directory laid out as the kubelet lays out a Secret volume: each version of the files in a directory
 * of its own, `..data` a symlink to the current one, and each file a symlink through `..data`. `write`
 * publishes a new version the way the kubelet does: a new directory, then an atomic swap of `..data`.
 */
export async function secretVolume(
  dir: string,
): Promise<{ write(files: Record<string, string>): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  let version = 0;
  return {
    async write(files) {
      const previous = version === 0 ? undefined : join(dir, `..version-${version}`);
      version++;
      const next = `..version-${version}`;
      await mkdir(join(dir, next));
      for (const [name, from] of Object.entries(files)) await copyFile(from, join(dir, next, name));
      await symlink(next, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      for (const name of Object.keys(files))
        await symlink(join('..data', name), join(dir, name)).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      if (previous !== undefined) await rm(previous, { recursive: true, force: true });
    },
  };
}
