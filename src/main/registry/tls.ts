import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';

/** The files of a TLS listener, checked to hold a certificate and the key that matches it. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/**
 * Checks `--registry-tls-cert` and `--registry-tls-key` before anything listens: both or neither, readable,
 * PEM, and the key the certificate names. uWS would otherwise start a listener that fails every handshake.
 * Errors name the flag, never the key.
 */
export async function loadTlsFiles(certFile: string, keyFile: string): Promise<TlsFiles | undefined> {
  if (certFile === '' && keyFile === '') return undefined;
  if (certFile === '' || keyFile === '') {
    throw new ConfigError('--registry-tls-cert and --registry-tls-key: give both, or neither');
  }
  const read = async (flag: string, path: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (cause) {
      throw new ConfigError(`${flag}: cannot read ${path}`, { cause });
    }
  };
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(await read('--registry-tls-cert', certFile));
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`--registry-tls-cert: ${certFile} holds no PEM certificate`, { cause });
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(await read('--registry-tls-key', keyFile)));
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`--registry-tls-key: ${keyFile} holds no PEM private key`, { cause });
  }
  if (!matches) throw new ConfigError('--registry-tls-key: the key does not match --registry-tls-cert');
  return { certFile, keyFile };
}
