import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';

const HEADER = '/key/swarm/psk/1.0.0/';

/**
 * Reads a libp2p private-network key file (`--p2p-psk-file`):
 *
 *     /key/swarm/psk/1.0.0/
 *     /base16/
 *     <64 hex digits: 32 random bytes>
 *
 * Any problem is a ConfigError naming the flag, never the key. Generate one with
 * `printf '/key/swarm/psk/1.0.0/\n/base16/\n%s\n' "$(openssl rand -hex 32)"`.
 */
export async function loadPsk(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`--p2p-psk-file: cannot read ${path}`, { cause });
  }
  return parsePsk(text);
}

/** Checks the key's format and returns it normalised, as the libp2p protector reads it. */
export function parsePsk(text: string): Uint8Array {
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const [header, encoding, key, extra] = lines;
  if (header !== HEADER || encoding !== '/base16/' || extra !== undefined) {
    throw new ConfigError(`--p2p-psk-file: expected the lines ${HEADER}, /base16/ and a 64-digit hex key`);
  }
  if (key === undefined || !/^[0-9a-fA-F]{64}$/.test(key)) {
    throw new ConfigError('--p2p-psk-file: the key must be 64 hex digits (32 bytes)');
  }
  return new TextEncoder().encode(`${HEADER}\n/base16/\n${key.toLowerCase()}`);
}
