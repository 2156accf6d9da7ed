import { DigestInvalidError } from '../errors.js';

/** A content digest in canonical `algorithm:hex` form, checked against the OCI grammar. */
export type Digest = string & { readonly __brand: 'Digest' };

const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/**
 * Parses a digest. Algorithms other than sha256/sha512 and encodings of the wrong length or case are
 * rejected, so a digest can be used as a file name without further checks.
 */
export function parseDigest(text: string): Digest {
  if (text.length > 200 || !DIGEST_GRAMMAR.test(text)) {
    throw new DigestInvalidError(`invalid digest ${JSON.stringify(text.slice(0, 80))}`);
  }
  const colon = text.indexOf(':');
  const algorithm = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  const length = HEX_LENGTH[algorithm];
  if (length === undefined) {
    throw new DigestInvalidError(`unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  }
  if (encoded.length !== length || !/^[0-9a-f]+$/.test(encoded)) {
    throw new DigestInvalidError(`digest ${algorithm} must be ${length} lowercase hex characters`);
  }
  return text as Digest;
}

export function isDigest(text: string): boolean {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(digest: Digest): string {
  return digest.slice(0, digest.indexOf(':'));
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}
