/**
 * The search's validation split. The built-in datasets have a train and a test split only; the search
 * must choose without ever looking at the test split (or the reported test accuracy would be biased by
 * the choice), so it carves a validation split deterministically out of the training split: the last
 * `count` training examples. Fine-tuning and calibration read training examples from the start of the
 * split and are limited to the examples before the validation block, so the three never overlap:
 *
 *   train split: [0, trainLimit) fine-tune and calibrate · ... · [train − count, train) validation
 *   test split:  never read by the search
 */
import { FrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { type DatasetFeed, openDatasetFeed, trainedOn } from '../data/feed.js';

/** Where each part of the search's data comes from, as index ranges of the training split. */
export interface SearchSplits {
  trainCount: number;
  /** Fine-tuning and calibration: training examples [0, trainLimit). */
  trainLimit: number;
  /** Validation: training examples [validationStart, trainCount). */
  validationStart: number;
  validationCount: number;
  /**
   * How many leading training examples the model says its weights have seen (`frugal.trainedOn`
   * metadata, written by Frugal's trainer); null when it does not say. Above `validationStart`, the
   * validation block overlaps the model's own training data.
   */
  modelTrainedOn: number | null;
}

/** Checks and lays out the splits; an E_USAGE error when the validation block would overlap the fine-tune data. */
export function searchSplits(trainCount: number, validationCount: number, trainLimit: number, modelTrainedOn: number | null = null): SearchSplits {
  if (!(Number.isInteger(validationCount) && validationCount >= 1)) throw new FrugalError('E_USAGE', `the validation size must be a positive integer, got ${validationCount}`, { option: 'validation' });
  if (!(Number.isInteger(trainLimit) && trainLimit >= 1)) throw new FrugalError('E_USAGE', `the fine-tuning example count must be a positive integer, got ${trainLimit}`, { option: 'trainLimit' });
  const validationStart = trainCount - validationCount;
  if (validationStart < 1) throw new FrugalError('E_USAGE', `a validation split of ${validationCount} leaves no training examples (the training split has ${trainCount}); give a smaller validation size`, { option: 'validation' });
  return { trainCount, trainLimit: Math.min(trainLimit, validationStart), validationStart, validationCount, modelTrainedOn };
}

/**
 * A feed whose `test` side is the validation block of the training split, so the evaluator (which
 * scores `test`) scores validation examples. Its `train` side is the examples before the block.
 */
export function validationFeed(dataset: string, model: Model, validationCount: number, trainLimit: number): { feed: DatasetFeed; splits: SearchSplits } {
  // Not evalOnly: the training split must be loaded (and for text, tokenized with the model's tokenizer).
  // The feed always opens a test side too; one example keeps it from tokenizing a split no one reads.
  const base = openDatasetFeed(dataset, model, { testLimit: 1 });
  const splits = searchSplits(base.counts.train, validationCount, trainLimit, trainedOn(model)[dataset] ?? null);
  const feed: DatasetFeed = {
    name: base.name,
    numClasses: base.numClasses,
    counts: { train: splits.validationStart, test: splits.validationCount },
    metadata: base.metadata,
    batch(split, indices, epoch) {
      if (split === 'train') return base.batch('train', indices, epoch);
      for (const i of indices) if (!(Number.isInteger(i) && i >= 0 && i < splits.validationCount)) throw new FrugalError('E_USAGE', `validation index ${i} is outside [0, ${splits.validationCount})`);
      return base.batch('train', indices.map((i) => splits.validationStart + i), epoch);
    },
  };
  return { feed, splits };
}

/** Whether the model's recorded training prefix stops before the validation block; null when the model records none. */
export function validationUnseen(splits: SearchSplits): boolean | null {
  return splits.modelTrainedOn === null ? null : splits.modelTrainedOn <= splits.validationStart;
}

/**
 * A warning when the validation block overlaps the examples the model was trained on (its accuracy there
 * is then flattering and near-perfect, so candidates tie), or null when it does not or the model does
 * not say.
 */
export function validationOverlapNote(splits: SearchSplits): string | null {
  if (validationUnseen(splits) !== false) return null;
  const seen = splits.modelTrainedOn!;
  const overlap = Math.min(seen, splits.trainCount) - splits.validationStart;
  return `the model was trained on ${overlap} of the ${splits.validationCount} validation examples (its frugal.trainedOn metadata says the first ${seen} training examples), so validation accuracy flatters every candidate alike and ties are likely; retrain it holding out the last ${splits.validationCount} training examples (as scripts/train-teachers.ts does for the embedded teachers)`;
}
