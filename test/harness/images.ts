import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { run } from './process.js';

/** Bump when the builder's output changes, so cached fixtures are rebuilt. */
const FIXTURE_VERSION = 1;
const CHUNK = 1 << 20;

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

export interface LayerSpec {
  /** Bytes of file content inside the tar. */
  size: number;
  seed: string;
  gzip: boolean;
}

export interface ImageSpec {
  layers: LayerSpec[];
  os?: string;
  architecture?: string;
}

export interface BuiltImage {
  manifest: OciDescriptor;
  config: OciDescriptor;
  layers: OciDescriptor[];
}

/** Deterministic pseudo-random bytes: AES-CTR keystream keyed by the seed (fast and incompressible). */
export async function* seededBytes(seed: string, size: number): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let left = size; left > 0; left -= CHUNK)
    yield cipher.update(zeros.subarray(0, Math.min(CHUNK, left)));
}

function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number): void => {
    header.write(text.slice(0, length), offset, 'ascii');
  };
  put(name, 0, 100);
  put('0000644\0', 100, 8);
  put('0000000\0', 108, 8);
  put('0000000\0', 116, 8);
  put(`${size.toString(8).padStart(11, '0')}\0`, 124, 12);
  put('00000000000\0', 136, 12);
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return header;
}

/** A tar with one regular file of seeded bytes. */
async function* tarOfOneFile(name: string, spec: LayerSpec): AsyncGenerator<Buffer> {
  yield tarHeader(name, spec.size);
  yield* seededBytes(spec.seed, spec.size);
  const pad = (512 - (spec.size % 512)) % 512;
  yield Buffer.alloc(pad + 1024);
}

function hashing(hash: ReturnType<typeof createHash>, counter: { size: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      counter.size += chunk.length;
      done(null, chunk);
    },
  });
}

/** Writes OCI image layouts by hand: `oci-layout`, `index.json`, `blobs/sha256/<hex>`. */
export class OciLayoutWriter {
  readonly dir: string;
  readonly #index: OciDescriptor[] = [];

  constructor(dir: string) {
    this.dir = dir;
  }

  async #store(
    source: AsyncIterable<Buffer>,
    gzip = false,
  ): Promise<{ digest: string; size: number; diffId: string }> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const temp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    const rawHash = createHash('sha256');
    const outHash = createHash('sha256');
    const raw = { size: 0 };
    const out = { size: 0 };
    const stages: NodeJS.ReadWriteStream[] = [hashing(rawHash, raw)];
    if (gzip) stages.push(createGzip({ level: 1 }));
    await pipeline([Readable.from(source), ...stages, hashing(outHash, out), createWriteStream(temp)]);
    const hex = outHash.digest('hex');
    await rename(temp, join(this.dir, 'blobs', 'sha256', hex));
    return { digest: `sha256:${hex}`, size: out.size, diffId: `sha256:${rawHash.digest('hex')}` };
  }

  async #json(mediaType: string, doc: unknown): Promise<OciDescriptor> {
    const bytes = Buffer.from(JSON.stringify(doc));
    const { digest, size } = await this.#store(
      (async function* () {
        yield bytes;
      })(),
    );
    return { mediaType, digest, size };
  }

  async addImage(spec: ImageSpec): Promise<BuiltImage> {
    const layers: OciDescriptor[] = [];
    const diffIds: string[] = [];
    for (const [i, layer] of spec.layers.entries()) {
      const blob = await this.#store(tarOfOneFile(`data/layer-${i}-${layer.seed}.bin`, layer), layer.gzip);
      diffIds.push(blob.diffId);
      const mediaType = layer.gzip
        ? 'application/vnd.oci.image.layer.v1.tar+gzip'
        : 'application/vnd.oci.image.layer.v1.tar';
      layers.push({ mediaType, digest: blob.digest, size: blob.size });
    }
    const os = spec.os ?? 'linux';
    const architecture = spec.architecture ?? 'amd64';
    const config = await this.#json('application/vnd.oci.image.config.v1+json', {
      architecture,
      os,
      config: {},
      rootfs: { type: 'layers', diff_ids: diffIds },
    });
    const manifest = await this.#json('application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers,
    });
    return { manifest: { ...manifest, platform: { os, architecture } }, config, layers };
  }

  async addIndex(manifests: OciDescriptor[]): Promise<OciDescriptor> {
    return this.#json('application/vnd.oci.image.index.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests,
    });
  }

  tag(descriptor: OciDescriptor, tag: string): void {
    const { platform: _platform, ...plain } = descriptor;
    this.#index.push({ ...plain, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }

  async finish(): Promise<void> {
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(this.dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: this.#index }),
    );
  }
}

/**
 * Builds a layout once per fixture version and key under the temp dir, reusing it while it exists;
 * fixtures are deterministic, so a cached one is identical to a fresh one.
 */
export async function cachedLayout<T>(
  key: string,
  build: (writer: OciLayoutWriter) => Promise<T>,
): Promise<{ dir: string; result: T }> {
  const dir = join(tmpdir(), 'shoal-fixtures', `v${FIXTURE_VERSION}-${key}`);
  const marker = join(dir, 'result.json');
  try {
    await stat(marker);
    return { dir, result: JSON.parse(await readFile(marker, 'utf8')) as T };
  } catch {
    // not built yet
  }
  const temp = `${dir}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const writer = new OciLayoutWriter(temp);
  const result = await build(writer);
  await writer.finish();
  await writeFile(join(temp, 'result.json'), JSON.stringify(result));
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
  return { dir, result };
}

/** Pushes a tag of a layout with skopeo (as `destTag`, default the same), keeping digests. */
export async function pushLayout(
  layoutDir: string,
  tag: string,
  registryHost: string,
  repository: string,
  destTag = tag,
): Promise<void> {
  await run('skopeo', [
    '--insecure-policy',
    'copy',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    `oci:${layoutDir}:${tag}`,
    `docker://${registryHost}/${repository}:${destTag}`,
  ]);
}
