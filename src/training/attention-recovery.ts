/**
 * Recovery after an attention conversion: the converted model is fine-tuned on its dataset with the
 * original (softmax) model as teacher, so it learns to reproduce the teacher's outputs with its new
 * attention while the hard labels keep it honest (loss = α·CE(labels) + (1−α)·T²·KL(teacher ‖ student)).
 *
 * This is a recipe (DESIGN.md): the conversion pass, then the trainer. It lives in training/ because
 * training already depends on passes/ (fp16 training graphs), and a pass must not depend on training.
 */
import { FrugalError } from '../errors.js';
import { evaluateModel } from '../evaluation/evaluate.js';
import type { Model } from '../ir/model.js';
import { type ConvertAttentionOptions, convertAttention } from '../passes/attention/convert.js';
import type { PassStats } from '../passes/pass.js';
import { type ProgressEvent, trainModel } from './trainer.js';
import { cloneModel } from './training-graph.js';

export interface RecoverAttentionOptions extends ConvertAttentionOptions {
  dataset: string;
  /** Fine-tuning epochs (default 1; 0 converts and evaluates only). */
  epochs?: number;
  /** Peak learning rate (default 1e-4: the weights start close to right). */
  lr?: number;
  batchSize?: number;
  /** Use only the first N training examples. */
  limit?: number;
  /** Score only the first N test examples. */
  evalLimit?: number;
  /** Weight of the hard-label term (default 0.5); the rest is distillation from the original. */
  alpha?: number;
  temperature?: number;
  seed?: number;
  onProgress?: (p: ProgressEvent) => void;
}

export interface RecoverAttentionResult {
  model: Model;
  conversion: PassStats;
  /** Test accuracy of the original, of the converted model before and after fine-tuning. */
  accuracy: { original: number; converted: number; recovered: number; count: number };
  epochs: number;
  trainSeconds: number;
}

/**
 * Converts `original` (not modified) to `opts.form` and fine-tunes it. Throws what the conversion throws
 * (no attention, unknown patterns, bad window) before any training starts.
 */
export async function recoverAttention(original: Model, opts: RecoverAttentionOptions): Promise<RecoverAttentionResult> {
  const epochs = opts.epochs ?? 1;
  if (!Number.isInteger(epochs) || epochs < 0) throw new FrugalError('E_USAGE', `epochs must be a non-negative integer, got ${epochs}`);
  const converted = cloneModel(original);
  const conversion = convertAttention(converted, opts).stats;
  const evalOpts = opts.evalLimit !== undefined ? { limit: opts.evalLimit } : {};
  const before = await evaluateModel(original, opts.dataset, evalOpts);
  const convertedAcc = await evaluateModel(converted, opts.dataset, evalOpts);
  if (epochs === 0) {
    return { model: converted, conversion, accuracy: { original: before.accuracy, converted: convertedAcc.accuracy, recovered: convertedAcc.accuracy, count: before.count }, epochs, trainSeconds: 0 };
  }
  const t0 = performance.now();
  const recovered = await fineTuneConverted(original, converted, { ...opts, epochs });
  const trainSeconds = (performance.now() - t0) / 1000;
  const after = await evaluateModel(recovered, opts.dataset, evalOpts);
  return { model: recovered, conversion, accuracy: { original: before.accuracy, converted: convertedAcc.accuracy, recovered: after.accuracy, count: before.count }, epochs, trainSeconds };
}

/**
 * The recovery fine-tune alone: `converted` trained on `opts.dataset` with `original` as teacher, no
 * evaluation (callers that must not read the test split, like the optimize search, use this).
 */
export async function fineTuneConverted(
  original: Model,
  converted: Model,
  opts: Omit<RecoverAttentionOptions, 'form' | 'window' | 'globalTokens' | 'randomFeatures' | 'evalLimit'> & { intraOpThreads?: number },
): Promise<Model> {
  const r = await trainModel({
    model: converted,
    dataset: opts.dataset,
    epochs: opts.epochs ?? 1,
    lr: opts.lr ?? 1e-4,
    batchSize: opts.batchSize ?? 32,
    teacher: original,
    loss: { kind: 'distillation', alpha: opts.alpha ?? 0.5, temperature: opts.temperature ?? 2 },
    dropout: false,
    evaluate: false,
    seed: opts.seed ?? 0,
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.intraOpThreads !== undefined ? { intraOpThreads: opts.intraOpThreads } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  return r.model;
}
