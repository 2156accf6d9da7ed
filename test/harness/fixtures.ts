import { type BuiltImage, cachedLayout, type OciDescriptor } from './images.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface SingleImageFixture {
  dir: string;
  tag: string;
  image: BuiltImage;
}

export interface MultiArchFixture {
  dir: string;
  tag: string;
  index: OciDescriptor;
  images: BuiltImage[];
}

/** A 69 MiB image with plain and gzip layers from 1 KiB to 64 MiB. */
export async function multiLayerImage(): Promise<SingleImageFixture> {
  const tag = 'v1';
  const { dir, result } = await cachedLayout('multi-layer', async (writer) => {
    const image = await writer.addImage({
      layers: [
        { size: 1 * KiB, seed: 'ml-1k', gzip: false },
        { size: 1 * MiB, seed: 'ml-1m', gzip: true },
        { size: 64 * MiB, seed: 'ml-64m', gzip: false },
        { size: 4 * MiB, seed: 'ml-4m', gzip: true },
      ],
    });
    writer.tag(image.manifest, tag);
    return image;
  });
  return { dir, tag, image: result };
}

/** An index over linux/amd64 and linux/arm64 images with small layers. */
export async function multiArchImage(): Promise<MultiArchFixture> {
  const tag = 'multi';
  const { dir, result } = await cachedLayout('multi-arch', async (writer) => {
    const images: BuiltImage[] = [];
    for (const architecture of ['amd64', 'arm64']) {
      images.push(
        await writer.addImage({
          architecture,
          layers: [
            { size: 256 * KiB, seed: `ma-${architecture}-a`, gzip: true },
            { size: 2 * KiB, seed: `ma-${architecture}-b`, gzip: false },
          ],
        }),
      );
    }
    const index = await writer.addIndex(images.map((image) => image.manifest));
    writer.tag(index, tag);
    return { index, images };
  });
  return { dir, tag, ...result };
}

/** A small single-layer image for tests that only need something to pull. */
export async function smallImage(seed: string): Promise<SingleImageFixture> {
  const tag = 'small';
  const { dir, result } = await cachedLayout(`small-${seed}`, async (writer) => {
    const image = await writer.addImage({ layers: [{ size: 64 * KiB, seed, gzip: true }] });
    writer.tag(image.manifest, tag);
    return image;
  });
  return { dir, tag, image: result };
}

/** A 256 MiB plain layer plus a small gzip one: big enough that a transfer takes visible time. */
export async function bigImage(): Promise<SingleImageFixture> {
  const tag = 'big';
  const { dir, result } = await cachedLayout('big-256m', async (writer) => {
    const image = await writer.addImage({
      layers: [
        { size: 256 * MiB, seed: 'big-256m', gzip: false },
        { size: 512 * KiB, seed: 'big-small', gzip: true },
      ],
    });
    writer.tag(image.manifest, tag);
    return image;
  });
  return { dir, tag, image: result };
}

/**
 * Three plain layers of 160, 64 and 32 MiB (256 MiB in all): an image big enough that a cluster-wide cold
 * pull takes visible time, with each layer likely owned by a different node. `seed` makes images distinct.
 */
export async function threeLayerImage(seed: string): Promise<SingleImageFixture> {
  const tag = 'v1';
  const { dir, result } = await cachedLayout(`three-layer-${seed}`, async (writer) => {
    const image = await writer.addImage({
      layers: [
        { size: 160 * MiB, seed: `${seed}-160m`, gzip: false },
        { size: 64 * MiB, seed: `${seed}-64m`, gzip: false },
        { size: 32 * MiB, seed: `${seed}-32m`, gzip: false },
      ],
    });
    writer.tag(image.manifest, tag);
    return image;
  });
  return { dir, tag, image: result };
}
