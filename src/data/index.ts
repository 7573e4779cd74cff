/**
 * Datasets, tokenizer and batching. `DATASETS` names what a CLI can pass as `--dataset`; the gather
 * helpers turn a list of example indices (from `batches`) into the typed arrays an ONNX feed needs.
 */
import { FrugalError } from '../errors.js';
import { loadMnist, type ImageDataset, type MnistOptions, type MnistSplits } from './mnist.js';
import { loadSpamAssassin, type SpamOptions, type SpamSplits, type TextDataset } from './spam.js';
import { DEFAULT_MAX_LENGTH, toInt64, type EncodedBatch, type WordTokenizer } from './tokenizer.js';

export * from './mnist.js';
export * from './spam.js';
export * from './tokenizer.js';
export * from './split.js';
export * from './feed.js';

/** What a dataset entry tells a CLI or a recipe before it loads anything. */
export interface DatasetInfo<Opts, Splits> {
  /** The `--dataset` name. */
  readonly name: string;
  /** One line for `--help`. */
  readonly description: string;
  readonly task: 'image-classification' | 'text-classification';
  /** Shape of one example as fed to a model (text: [default sequence length]). */
  readonly inputShape: readonly number[];
  /** Element type of the model input (text ids are int64 for Gather). */
  readonly inputType: 'float32' | 'int64';
  readonly numClasses: number;
  /** Class names by label. */
  readonly classNames: readonly string[];
  /** Train/test sizes with the default options. */
  readonly sizes: { readonly train: number; readonly test: number };
  /** Loads the seeded train/test split (synchronous; cached in memory). */
  readonly load: (opts?: Opts) => Splits;
}

const frozen = <T>(a: T[]): readonly T[] => Object.freeze(a);

/** The built-in datasets, by `--dataset` name. */
export const DATASETS = Object.freeze({
  mnist: Object.freeze({
    name: 'mnist',
    description: 'MNIST handwritten digits (10,000 from the mnist package), 28x28 grey in [0,1]',
    task: 'image-classification',
    inputShape: frozen([1, 28, 28]),
    inputType: 'float32',
    numClasses: 10,
    classNames: frozen(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']),
    sizes: Object.freeze({ train: 8000, test: 2000 }),
    load: (opts?: MnistOptions) => loadMnist(opts),
  }) satisfies DatasetInfo<MnistOptions, MnistSplits>,
  spam: Object.freeze({
    name: 'spam',
    description: 'SpamAssassin public corpus (6,046 e-mails, subject + body), spam vs ham',
    task: 'text-classification',
    inputShape: frozen([DEFAULT_MAX_LENGTH]),
    inputType: 'int64',
    numClasses: 2,
    classNames: frozen(['ham', 'spam']),
    sizes: Object.freeze({ train: 4837, test: 1209 }),
    load: (opts?: SpamOptions) => loadSpamAssassin(opts),
  }) satisfies DatasetInfo<SpamOptions, SpamSplits>,
});

/** A `--dataset` name. */
export type DatasetName = keyof typeof DATASETS;

/** The entry for `name`, or an E_USAGE error listing the known names. */
export function getDataset<N extends DatasetName>(name: N): (typeof DATASETS)[N];
export function getDataset(name: string): (typeof DATASETS)[DatasetName];
export function getDataset(name: string): (typeof DATASETS)[DatasetName] {
  if (!Object.hasOwn(DATASETS, name)) {
    throw new FrugalError('E_USAGE', `unknown dataset "${name}"; expected one of: ${Object.keys(DATASETS).join(', ')}`);
  }
  return DATASETS[name as DatasetName];
}

function checkIndex(i: number, count: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= count) {
    throw new FrugalError('E_USAGE', `${what}: index ${i} is outside [0, ${count})`);
  }
}

/** Labels in the two forms losses take: uint8 and int64. */
function gatherLabels(labels: Uint8Array, indices: ArrayLike<number>): { labels: Uint8Array; labels64: BigInt64Array } {
  const out = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) out[k] = labels[indices[k]!]!;
  return { labels: out, labels64: toInt64(Int32Array.from(out)) };
}

/** A batch of images ready for an ONNX float32 input of shape `dims`. */
export interface ImageBatch {
  /** count * prod(shape) floats, NCHW. */
  images: Float32Array;
  labels: Uint8Array;
  /** The labels as int64 (for losses that take int64 class indices). */
  labels64: BigInt64Array;
  count: number;
  /** [count, ...shape], e.g. [n, 1, 28, 28]. */
  dims: number[];
}

/** Copies the images and labels at `indices` (e.g. one yield of `batches`) into a new batch. */
export function gatherImages(ds: ImageDataset, indices: ArrayLike<number>): ImageBatch {
  const size = ds.shape.reduce<number>((a, b) => a * b, 1);
  const images = new Float32Array(indices.length * size);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    checkIndex(i, ds.count, 'gatherImages');
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
  }
  return { images, ...gatherLabels(ds.labels, indices), count: indices.length, dims: [indices.length, ...ds.shape] };
}

/** A text dataset encoded once into fixed-length rows, so epochs do not re-tokenize. */
export interface TokenizedDataset {
  /** count * maxLength int32 ids (row-major). */
  ids: Int32Array;
  mask: Uint8Array;
  /** Real tokens per row ([CLS] included). */
  lengths: Int32Array;
  labels: Uint8Array;
  count: number;
  maxLength: number;
}

/** Encodes every text of `ds` with `tokenizer` into [count, maxLength] rows (int32 only, to save memory). */
export function encodeTextDataset(
  ds: TextDataset,
  tokenizer: WordTokenizer,
  maxLength: number = DEFAULT_MAX_LENGTH,
): TokenizedDataset {
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new FrugalError('E_USAGE', `encodeTextDataset: maxLength must be a positive integer, got ${maxLength}`);
  }
  const ids = new Int32Array(ds.count * maxLength);
  const mask = new Uint8Array(ds.count * maxLength);
  const lengths = new Int32Array(ds.count);
  for (let r = 0; r < ds.count; r++) lengths[r] = tokenizer.encodeInto(ds.texts[r]!, maxLength, ids, mask, r * maxLength);
  return { ids, mask, lengths, labels: ds.labels, count: ds.count, maxLength };
}

/** A batch of token rows with labels, ready for int64 (or int32) ONNX inputs of shape `dims`. */
export interface TokenBatch extends EncodedBatch {
  labels: Uint8Array;
  labels64: BigInt64Array;
}

/** Copies the rows at `indices` of an encoded dataset into a new batch (ids in int64 and int32). */
export function gatherTokens(ds: TokenizedDataset, indices: ArrayLike<number>): TokenBatch {
  const L = ds.maxLength;
  const n = indices.length;
  const ids32 = new Int32Array(n * L);
  const mask = new Uint8Array(n * L);
  const lengths = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k]!;
    checkIndex(i, ds.count, 'gatherTokens');
    ids32.set(ds.ids.subarray(i * L, (i + 1) * L), k * L);
    mask.set(ds.mask.subarray(i * L, (i + 1) * L), k * L);
    lengths[k] = ds.lengths[i]!;
  }
  return {
    ids: toInt64(ids32),
    ids32,
    mask,
    lengths,
    count: n,
    maxLength: L,
    dims: [n, L],
    ...gatherLabels(ds.labels, indices),
  };
}

/** One-hot float32 targets, count * numClasses (for MSE or soft-target losses). */
export function oneHot(labels: ArrayLike<number>, numClasses: number): Float32Array {
  const out = new Float32Array(labels.length * numClasses);
  for (let k = 0; k < labels.length; k++) {
    const c = labels[k]!;
    checkIndex(c, numClasses, 'oneHot');
    out[k * numClasses + c] = 1;
  }
  return out;
}
