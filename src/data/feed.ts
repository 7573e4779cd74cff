/**
 * Turns a built-in dataset into ONNX feeds for a given model: MNIST images shaped as the model's input
 * rank ([b, 784] or [b, 1, 28, 28]); SpamAssassin texts tokenized with a WordTokenizer (fitted on the
 * train split with the model's vocabulary size, or read back from the model's metadata) into
 * `input_ids` / `attention_mask` int64 [b, maxLength].
 *
 * A text model carries its tokenizer in `metadata_props` (`frugal.tokenizer`, `frugal.maxLength`), so
 * evaluation re-tokenizes exactly as training did.
 */
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';
import {
  DEFAULT_MAX_LENGTH,
  encodeTextDataset,
  gatherImages,
  gatherTokens,
  getDataset,
  toInt64,
  type ImageDataset,
  type TokenizedDataset,
  WordTokenizer,
} from './index.js';
import type { Model } from '../ir/model.js';
import { requiredInputs } from '../ir/summary.js';
import { createRng } from '../util/rng.js';
import { shapeOf } from '../ir/types.js';

export const TOKENIZER_METADATA_KEY = 'frugal.tokenizer';
export const MAX_LENGTH_METADATA_KEY = 'frugal.maxLength';

export interface FeedBatch {
  /** Feeds for the model's data inputs. */
  feeds: Record<string, ort.Tensor>;
  labels: Uint8Array;
  count: number;
}

export interface DatasetFeed {
  name: 'mnist' | 'spam';
  numClasses: number;
  /** Examples available per split (after `limit`). */
  counts: { train: number; test: number };
  /** Feeds for the examples at `indices` of a split. */
  batch(split: 'train' | 'test', indices: readonly number[], epoch?: number): FeedBatch;
  /** Entries to store in a trained model's metadata_props (tokenizer and sequence length for text). */
  metadata: Array<[string, string]>;
}

export interface DatasetFeedOptions {
  /** Use only the first N training examples. */
  limit?: number;
  /** Use only the first N test examples. */
  testLimit?: number;
  /** Text: sequence length (default: the model's metadata, else its position table's rows, else 512). */
  maxLength?: number;
  /** Evaluation only: skip the train split, and require a text model to carry its tokenizer. */
  evalOnly?: boolean;
  /** Images, train split only: random translation by up to `shift` pixels, seeded per (seed, epoch, example). */
  augment?: { shift: number; seed: number };
}

/** The value of a model metadata entry, if present. */
export function modelMetadata(model: Model, key: string): string | undefined {
  return model.extras.metadataProps?.find(([k]) => k === key)?.[1];
}

/**
 * Metadata key recording which training examples a model's weights have seen, as JSON
 * `{ "<dataset>": N }`: the first N examples of that dataset's training split (the trainer reads
 * examples [0, N) only). The search reads it to tell whether its validation block, carved from the end
 * of the training split, is unseen by the model (search/validation.ts).
 */
export const TRAINED_ON_METADATA_KEY = 'frugal.trainedOn';

/** The training-split prefix sizes a model records as seen, by dataset (empty when it records none or the entry is unreadable). */
export function trainedOn(model: Model): Record<string, number> {
  const raw = modelMetadata(model, TRAINED_ON_METADATA_KEY);
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(parsed)) if (Number.isInteger(v) && (v as number) >= 0) out[k] = v as number;
    return out;
  } catch {
    return {};
  }
}

/**
 * Records that `model` has now seen the first `count` training examples of `dataset`, keeping the larger
 * prefix where it already records one (a fine-tune on fewer examples does not unsee the earlier ones).
 */
export function recordTrainedOn(model: Model, dataset: string, count: number): void {
  const seen = trainedOn(model);
  seen[dataset] = Math.max(seen[dataset] ?? 0, count);
  setModelMetadata(model, [[TRAINED_ON_METADATA_KEY, JSON.stringify(seen)]]);
}

/** Sets (or replaces) model metadata entries. */
export function setModelMetadata(model: Model, entries: ReadonlyArray<[string, string]>): void {
  const props = (model.extras.metadataProps ??= []);
  for (const [k, v] of entries) {
    const i = props.findIndex(([key]) => key === k);
    if (i >= 0) props[i] = [k, v];
    else props.push([k, v]);
  }
}

function checkLimit(n: number | undefined, what: string): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 1)) throw new FrugalError('E_USAGE', `${what} must be a positive integer, got ${n}`);
}

/** Opens `dataset` for `model` (the forward model: its inputs decide the feed layout). */
export function openDatasetFeed(dataset: string, model: Model, opts: DatasetFeedOptions = {}): DatasetFeed {
  checkLimit(opts.limit, 'limit');
  checkLimit(opts.testLimit, 'test limit');
  const info = getDataset(dataset);
  if (info.name === 'mnist') return mnistFeed(model, opts);
  return spamFeed(model, opts);
}

function mnistFeed(model: Model, opts: DatasetFeedOptions): DatasetFeed {
  // Real inputs only: IR < 4 models also list every initializer as a graph input (with a default).
  const inputs = requiredInputs(model.graph);
  const input = inputs[0];
  if (!input || inputs.length !== 1) {
    throw new FrugalError('E_USAGE', `an MNIST model takes one float input ([batch, 784] or [batch, 1, 28, 28]); this model takes ${inputs.map((v) => `'${v.name}'`).join(', ') || 'none'}`);
  }
  const shape = shapeOf(input.type);
  const rank = shape?.length;
  const okFlat = rank === 2 && (typeof shape![1] !== 'number' || shape![1] === 784);
  const okImage = rank === 4 && shape!.slice(1).every((d, i) => typeof d !== 'number' || d === [1, 28, 28][i]);
  if (!okFlat && !okImage) {
    throw new FrugalError('E_USAGE', `model input '${input.name}' has shape ${JSON.stringify(shape ?? 'unknown')}; MNIST feeds [batch, 784] or [batch, 1, 28, 28]`);
  }
  const splits = getDataset('mnist').load();
  const train = limitImages(splits.train, opts.limit);
  const test = limitImages(splits.test, opts.testLimit);
  const classes = (shapeOf(model.graph.outputs[0]?.type)?.[1] as number | undefined) ?? 10;
  if (typeof classes === 'number' && classes !== 10) throw new FrugalError('E_USAGE', `model output '${model.graph.outputs[0]!.name}' has ${classes} classes; MNIST has 10`);
  return {
    name: 'mnist',
    numClasses: 10,
    counts: { train: train.count, test: test.count },
    metadata: [],
    batch(split, indices, epoch = 0) {
      const b = gatherImages(split === 'train' ? train : test, indices);
      if (split === 'train' && opts.augment && opts.augment.shift > 0) shiftImages(b.images, indices, opts.augment, epoch);
      const dims = rank === 2 ? [b.count, 784] : b.dims;
      return { feeds: { [input.name]: new ort.Tensor('float32', b.images, dims) }, labels: b.labels, count: b.count };
    },
  };
}

/**
 * Translates each 28×28 image in place by a random (dx, dy) in [−shift, shift]², filling with zeros.
 * The offsets depend only on (seed, epoch, example index), so a resumed run sees the same images as an
 * uninterrupted one. Small shifts are the classic MNIST augmentation: digits are position-invariant.
 */
function shiftImages(images: Float32Array, indices: readonly number[], aug: { shift: number; seed: number }, epoch: number): void {
  const tmp = new Float32Array(784);
  const span = 2 * aug.shift + 1;
  indices.forEach((example, i) => {
    const rng = createRng(((aug.seed * 1_000_003) ^ Math.imul(epoch + 1, 0x9e3779b1) ^ Math.imul(example + 1, 0x85ebca6b)) | 0);
    const dx = rng.int(span) - aug.shift;
    const dy = rng.int(span) - aug.shift;
    if (dx === 0 && dy === 0) return;
    const img = images.subarray(i * 784, (i + 1) * 784);
    tmp.fill(0);
    for (let y = 0; y < 28; y++) {
      const sy = y - dy;
      if (sy < 0 || sy >= 28) continue;
      for (let x = 0; x < 28; x++) {
        const sx = x - dx;
        if (sx >= 0 && sx < 28) tmp[y * 28 + x] = img[sy * 28 + sx]!;
      }
    }
    img.set(tmp);
  });
}

function limitImages(ds: ImageDataset, limit: number | undefined): ImageDataset {
  if (limit === undefined || limit >= ds.count) return ds;
  return { ...ds, images: ds.images.subarray(0, limit * 784), labels: ds.labels.subarray(0, limit), count: limit };
}

/** The vocabulary size a token model expects: rows of the Gather table indexed by `input_ids`. */
function vocabSizeOf(model: Model, ids: string): number | undefined {
  for (const n of model.graph.nodes) {
    if (n.opType === 'Gather' && n.inputs[1]?.name === ids && n.inputs[0]?.initializer) return Number(n.inputs[0].initializer.dims[0]);
  }
  return undefined;
}

/** Rows of a learned position table (an initializer named like `*position*` of rank 2). */
function positionRows(model: Model): number | undefined {
  const t = model.graph.initializers().find((v) => /position/i.test(v.name) && v.initializer!.dims.length === 2);
  return t ? Number(t.initializer!.dims[0]) : undefined;
}

function spamFeed(model: Model, opts: DatasetFeedOptions): DatasetFeed {
  const names = requiredInputs(model.graph).map((v) => v.name);
  if (!names.includes('input_ids')) {
    throw new FrugalError('E_USAGE', `a text model takes 'input_ids' (and optionally 'attention_mask') int64 [batch, seq]; this model takes ${names.map((n) => `'${n}'`).join(', ')}`);
  }
  const hasMask = names.includes('attention_mask');
  const storedTok = modelMetadata(model, TOKENIZER_METADATA_KEY);
  const storedLen = modelMetadata(model, MAX_LENGTH_METADATA_KEY);
  const maxLength = opts.maxLength ?? (storedLen ? Number(storedLen) : undefined) ?? positionRows(model) ?? DEFAULT_MAX_LENGTH;
  checkLimit(maxLength, 'sequence length');
  const rows = positionRows(model);
  if (rows !== undefined && maxLength > rows) throw new FrugalError('E_USAGE', `sequence length ${maxLength} exceeds the model's ${rows} positions`);
  const splits = getDataset('spam').load();
  const limitTexts = <T extends { texts: string[]; labels: Uint8Array; count: number }>(ds: T, n: number | undefined): T =>
    n === undefined || n >= ds.count ? ds : { ...ds, texts: ds.texts.slice(0, n), labels: ds.labels.subarray(0, n), count: n };
  const trainTexts = limitTexts(splits.train, opts.limit);
  const testTexts = limitTexts(splits.test, opts.testLimit);
  let tokenizer: WordTokenizer;
  if (opts.evalOnly && !storedTok) {
    throw new FrugalError('E_USAGE', `the model carries no '${TOKENIZER_METADATA_KEY}' metadata, so its tokenization is unknown; evaluate a model trained by 'frugal train --dataset spam'`);
  }
  if (storedTok) {
    tokenizer = WordTokenizer.fromJSON(storedTok);
  } else {
    const vocabSize = vocabSizeOf(model, 'input_ids');
    if (vocabSize === undefined) throw new FrugalError('E_USAGE', `cannot tell the model's vocabulary size (no Gather over 'input_ids' with a constant table) and it stores no '${TOKENIZER_METADATA_KEY}'`);
    tokenizer = WordTokenizer.fit(trainTexts.texts, { vocabSize });
  }
  // Encode once; epochs gather rows.
  const train: TokenizedDataset = encodeTextDataset(opts.evalOnly ? limitTexts(trainTexts, 0) : trainTexts, tokenizer, maxLength);
  const test: TokenizedDataset = encodeTextDataset(testTexts, tokenizer, maxLength);
  return {
    name: 'spam',
    numClasses: 2,
    counts: { train: train.count, test: test.count },
    metadata: [
      [TOKENIZER_METADATA_KEY, JSON.stringify(tokenizer.toJSON())],
      [MAX_LENGTH_METADATA_KEY, String(maxLength)],
    ],
    batch(split, indices) {
      const b = gatherTokens(split === 'train' ? train : test, indices);
      const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', b.ids, b.dims) };
      if (hasMask) feeds.attention_mask = new ort.Tensor('int64', toInt64(Int32Array.from(b.mask)), b.dims);
      return { feeds, labels: b.labels, count: b.count };
    },
  };
}
