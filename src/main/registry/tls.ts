import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';

/** The files of a TLS listener, checked to hold a certificate and the key that matches it. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** A certificate and its key as read, checked to belong together. */
export interface TlsPair {
  cert: string;
  key: string;
  /** When the certificate expires. */
  notAfter: Date;
}

/**
 * Checks a listener's certificate and key flags (`--registry-tls-cert` and `--registry-tls-key` unless
 * `flags` names others) before anything listens: both or neither, readable, PEM, and the key the
 * certificate names. uWS would otherwise start a listener that fails every handshake. Errors name the
 * flag, never the key.
 */
export async function loadTlsFiles(
  certFile: string,
  keyFile: string,
  flags: { cert: string; key: string } = { cert: '--registry-tls-cert', key: '--registry-tls-key' },
): Promise<TlsFiles | undefined> {
  if (certFile === '' && keyFile === '') return undefined;
  if (certFile === '' || keyFile === '')
    throw new ConfigError(`${flags.cert} and ${flags.key}: give both, or neither`);
  await readTlsPair({ certFile, keyFile }, flags);
  return { certFile, keyFile };
}

/** Reads and checks a certificate and its key, as loadTlsFiles does; errors name the flags. */
export async function readTlsPair(files: TlsFiles, flags: { cert: string; key: string }): Promise<TlsPair> {
  const read = async (flag: string, path: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (cause) {
      throw new ConfigError(`${flag}: cannot read ${path}`, { cause });
    }
  };
  const [cert, key] = [await read(flags.cert, files.certFile), await read(flags.key, files.keyFile)];
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (cause) {
    throw new ConfigError(`${flags.cert}: ${files.certFile} holds no PEM certificate`, { cause });
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(key));
  } catch (cause) {
    throw new ConfigError(`${flags.key}: ${files.keyFile} holds no PEM private key`, { cause });
  }
  if (!matches) throw new ConfigError(`${flags.key}: the key does not match ${flags.cert}`);
  return { cert, key, notAfter: new Date(certificate.validTo) };
}
