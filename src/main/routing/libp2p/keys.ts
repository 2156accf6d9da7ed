import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';

const encoder = new TextEncoder();

/**
 * The DHT key of a routing key: CIDv1, raw codec, sha256 multihash over the UTF-8 key text (`sha256:…`
 * for content, `<registry>/<repo>:<tag>` for tags), the scheme Spegel uses.
 */
export async function routingCid(key: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(encoder.encode(key)));
}
