/**
 * The pruning recipe: prune a model (magnitude, N:M or structured; passes/prune/) and, given a dataset,
 * recover accuracy by fine-tuning it with the trainer. Unstructured and N:M masks live in the training
 * run (the trainer's `afterStep` hook re-applies them after every optimizer step, so momentum and
 * weight decay never revive a pruned weight); magnitude pruning with fine-tuning is gradual, its target
 * following Zhu & Gupta's cubic schedule over the first 3/4 of the steps. Taylor importance takes its
 * gradients from the training graph on real batches. With `distill`, the unpruned model teaches the
 * pruned one (the trainer's distillation loss). The result carries the figures a user compares:
 * parameters and FLOPs (cost model), accuracy before, after pruning and after fine-tuning.
 */
import * as ort from 'onnxruntime-node';
import { FrugalError, isFrugalError } from '../errors.js';
import { batches } from '../data/index.js';
import { openDatasetFeed } from '../data/feed.js';
import { evaluateModel } from '../evaluation/evaluate.js';
import { estimateCost } from '../ir/cost.js';
import type { Model } from '../ir/model.js';
import type { ValueType } from '../ir/types.js';
import { runPass } from '../passes/pass.js';
import { prepareForQuantizationPass } from '../passes/registry.js';
import {
  applyMasks, checkPattern, checkRatio, checkSparsity, findPrunableWeights, type Importance, magnitudeMasks, type Masks, masksFromArrays, nmMasks,
  polynomialSparsity, sparsityReport, structuredPrunePass, type StructuredTarget,
} from '../passes/prune/index.js';
import { createSession, feedSpecsOf, concreteShape } from '../runtime/index.js';
import { targetDistribution } from './losses.js';
import type { OptimizerConfig, OptimizerKind } from './optimizers/index.js';
import { trainModel, type ProgressEvent } from './trainer.js';
import { buildTrainingModel, cloneModel, initializerArrays } from './training-graph.js';

export type PruneMethod = 'magnitude' | 'nm' | 'structured';
export const PRUNE_METHODS: readonly PruneMethod[] = Object.freeze(['magnitude', 'nm', 'structured'] as PruneMethod[]);

export interface PruneOptions {
  method: PruneMethod;
  /** magnitude: fraction of prunable weights to zero, in [0, 1) (default 0.5). */
  sparsity?: number;
  /** magnitude: per-layer (default) or one global threshold. */
  scope?: 'layer' | 'global';
  /** nm: keep N of every M along the reduction axis (default 2:4). */
  pattern?: { n: number; m: number };
  /** structured: fraction of channels/units/heads to remove per group, in [0, 1) (default 0.5). */
  ratio?: number;
  /** structured: ratio for attention heads (default `ratio`). */
  headRatio?: number;
  importance?: Importance;
  target?: StructuredTarget;
  /** magnitude/nm: prune embedding tables too (default false). */
  embeddings?: boolean;
  /** Names of weights or nodes to leave alone. */
  exclude?: string[];
  /** Dataset for accuracy, Taylor gradients and fine-tuning ('mnist' | 'spam'). */
  dataset?: string;
  /** Fine-tuning epochs (0: prune and evaluate only). */
  epochs?: number;
  /** Fine-tuning steps (overrides epochs). */
  steps?: number;
  lr?: number;
  optimizer?: OptimizerKind | OptimizerConfig;
  batchSize?: number;
  /**
   * Fine-tune by distillation from the unpruned model (its logits as soft targets, temperature 2, and
   * the hard labels at weight `alpha`, default 0.5) instead of labels alone.
   */
  distill?: boolean | { temperature?: number; alpha?: number };
  /** Magnitude with fine-tuning: gradual schedule (default true); false prunes once, then fine-tunes under fixed masks. */
  gradual?: boolean;
  /** Use only the first N training / test examples. */
  limit?: number;
  evalLimit?: number;
  /**
   * Score the test split before and after (default true). The optimize search passes false: it scores
   * candidates on a validation split of its own and must never look at the test split.
   */
  evaluate?: boolean;
  /** Batches of 64 used for Taylor gradients (default 8). */
  taylorBatches?: number;
  intraOpThreads?: number;
  seed?: number;
  onProgress?: (p: ProgressEvent) => void;
  /** Called with a short line at each phase (evaluate, prune, fine-tune). */
  onPhase?: (line: string) => void;
}

export interface PruneResult {
  model: Model;
  method: PruneMethod;
  /** Exact zeros among the prunable weights of the output (structured pruning leaves none: it removes them). */
  sparsity: number;
  parameterCount: { before: number; after: number };
  /** FLOPs of one example at `flopsShape` sizes (null where the cost model cannot tell). */
  flops: { before: number | null; after: number | null };
  flopsShape: Record<string, number>;
  accuracy?: { before: number; afterPruning: number; afterFineTune?: number };
  /** The pruning pass's stats (groups, blocked groups, layers...). */
  stats: Record<string, unknown>;
  fineTune?: { steps: number; seconds: number };
}

/** Sizes for symbolic input dims in cost figures: sequence-like dims 128, everything else 1. */
export function costDims(model: Model): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const s of feedSpecsOf(model)) for (const d of s.shape ?? []) if (typeof d === 'string') dims[d] = /seq|len|token|time/i.test(d) ? 128 : 1;
  return dims;
}

/** Parameters and FLOPs at the given dims, without leaving inferred types on the model. */
export function costOf(model: Model, dims: Record<string, number>): { parameterCount: number; flops: number | null } {
  const saved = new Map<object, ValueType | undefined>();
  for (const v of model.graph.values.values()) saved.set(v, v.type);
  try {
    const inputShapes = Object.fromEntries(feedSpecsOf(model).filter((s) => s.shape).map((s) => [s.name, concreteShape(s, dims)]));
    const c = estimateCost(model, { infer: { inputShapes } });
    return { parameterCount: c.parameterCount, flops: c.flops };
  } catch {
    return { parameterCount: estimateCost(model).parameterCount, flops: null };
  } finally {
    for (const v of model.graph.values.values()) v.type = saved.get(v);
  }
}

/**
 * Gradients of the training loss w.r.t. every float weight, summed over `count` shuffled training
 * batches (for Taylor importance).
 */
export async function lossGradients(model: Model, dataset: string, opts: { count?: number; batchSize?: number; seed?: number; intraOpThreads?: number } = {}): Promise<Map<string, Float32Array>> {
  const feed = openDatasetFeed(dataset, model);
  const { model: train, binding } = buildTrainingModel(model, { loss: { kind: 'cross-entropy' }, dropout: false });
  const weights = initializerArrays(model, binding.weights.map((w) => w.name));
  const stats = initializerArrays(model, binding.runningStats.map((s) => s.input));
  const sums = new Map(binding.weights.map((w) => [w.name, new Float32Array(weights.get(w.name)!.length)]));
  const session = await createSession(train, { name: 'taylor gradients', ...(opts.intraOpThreads ? { intraOpThreads: opts.intraOpThreads } : {}) });
  try {
    const order = [...batches(feed.counts.train, opts.batchSize ?? 64, { shuffle: true, seed: opts.seed ?? 0 })].slice(0, opts.count ?? 8);
    for (const idx of order) {
      const b = feed.batch('train', idx);
      const feeds: Record<string, ort.Tensor> = { ...b.feeds };
      for (const w of binding.weights) feeds[w.name] = new ort.Tensor('float32', weights.get(w.name)!, w.dims);
      for (const s of binding.runningStats) feeds[s.input] = new ort.Tensor('float32', stats.get(s.input)!, s.dims);
      for (const li of binding.lossInputs) if (li.role === 'target') feeds[li.name] = new ort.Tensor('float32', targetDistribution(b.labels, feed.numClasses), [b.count, feed.numClasses]);
      const out = await session.runOrt(feeds, { outputs: binding.weights.map((w) => w.gradient) });
      for (const w of binding.weights) {
        const g = (out[w.gradient] as ort.Tensor).data as Float32Array;
        const acc = sums.get(w.name)!;
        for (let i = 0; i < g.length; i++) acc[i] += g[i]!;
      }
    }
  } finally {
    await session.release();
  }
  return sums;
}

function checkOptions(o: PruneOptions): void {
  if (!PRUNE_METHODS.includes(o.method)) throw new FrugalError('E_USAGE', `--method must be one of ${PRUNE_METHODS.join(', ')}, got '${String(o.method)}'`);
  if (o.sparsity !== undefined) checkSparsity(o.sparsity);
  if (o.ratio !== undefined) checkRatio(o.ratio);
  if (o.headRatio !== undefined) checkRatio(o.headRatio);
  if (o.pattern) checkPattern(o.pattern.n, o.pattern.m);
  if (o.importance === 'taylor' && !o.dataset) throw new FrugalError('E_USAGE', '--importance taylor needs --dataset (gradients come from real batches)');
  if ((o.epochs || o.steps) && !o.dataset) throw new FrugalError('E_USAGE', '--epochs/--steps fine-tune on a dataset: give --dataset mnist|spam');
  if (o.distill && !(o.epochs || o.steps)) throw new FrugalError('E_USAGE', '--distill applies to fine-tuning: give --dataset and --epochs');
}

/** Prunes `input` (left unchanged) and fine-tunes it when a dataset and epochs/steps are given; see {@link PruneOptions}. */
export async function pruneModel(input: Model, o: PruneOptions): Promise<PruneResult> {
  checkOptions(o);
  const phase = o.onPhase ?? (() => {});
  const model = cloneModel(input);
  prepareForQuantizationPass.run(model);
  const dims = costDims(model);
  const before = costOf(model, dims);
  const threads = o.intraOpThreads ? { intraOpThreads: o.intraOpThreads } : {};
  const evalOpts = { ...(o.evalLimit !== undefined ? { limit: o.evalLimit } : {}), ...threads };
  let accBefore: number | undefined;
  if (o.dataset) {
    // A dataset that does not fit the model fails here, before any work, naming the flag.
    try {
      openDatasetFeed(o.dataset, model, { evalOnly: true, testLimit: 1 });
    } catch (e) {
      if (isFrugalError(e, 'E_USAGE')) throw new FrugalError('E_USAGE', `--dataset ${o.dataset} does not fit this model: ${e.message}`, { cause: e });
      throw e;
    }
    if (o.evaluate !== false) {
      phase(`evaluating the unpruned model on ${o.dataset}`);
      accBefore = (await evaluateModel(model, o.dataset, evalOpts)).accuracy;
    }
  }
  const fineTuneSteps = o.dataset && (o.steps || o.epochs) ? true : false;
  const gradual = o.method === 'magnitude' && fineTuneSteps && o.gradual !== false;
  let pruned: Model = model;
  let stats: Record<string, unknown> = {};
  let masks: Masks | undefined;

  phase(`pruning (${o.method}${gradual ? ', gradual during fine-tuning' : ''})`);
  if (o.method === 'structured') {
    const gradients = o.importance === 'taylor' ? await lossGradients(model, o.dataset!, { count: o.taylorBatches ?? 8, ...threads }) : undefined;
    const r = await runPass(
      structuredPrunePass({ ratio: o.ratio ?? 0.5, ...(o.headRatio !== undefined ? { headRatio: o.headRatio } : {}), importance: o.importance ?? 'l1', target: o.target ?? 'all', ...(gradients ? { gradients } : {}), ...(o.exclude ? { exclude: o.exclude } : {}) }),
      model,
    );
    pruned = r.model;
    stats = r.stats;
  } else if (o.method === 'nm') {
    const r = nmMasks(model, { n: o.pattern?.n ?? 2, m: o.pattern?.m ?? 4, embeddings: o.embeddings === true, ...(o.exclude ? { exclude: o.exclude } : {}) });
    if (!r.masks.size) throw new FrugalError('E_UNSUPPORTED', `no prunable weight has a reduction length divisible by ${o.pattern?.m ?? 4}`);
    masks = r.masks;
    stats = { pattern: `${o.pattern?.n ?? 2}:${o.pattern?.m ?? 4}`, skipped: r.skipped };
  } else {
    const sparsity = o.sparsity ?? 0.5;
    masks = magnitudeMasks(model, { sparsity: gradual ? 0 : sparsity, scope: o.scope ?? 'layer', embeddings: o.embeddings === true, ...(o.exclude ? { exclude: o.exclude } : {}) });
    stats = { target: sparsity, scope: o.scope ?? 'layer', gradual, embeddings: o.embeddings === true, skipped: findPrunableWeights(model).skipped };
  }
  if (masks) applyMasks(pruned, masks);

  let accPruned: number | undefined;
  const scoreTest = o.dataset !== undefined && o.evaluate !== false;
  if (scoreTest && !gradual) accPruned = (await evaluateModel(pruned, o.dataset!, evalOpts)).accuracy;
  else if (scoreTest) {
    // Gradual pruning starts dense; the one-shot model at the final sparsity shows what fine-tuning recovers.
    const oneShot = cloneModel(model);
    applyMasks(oneShot, magnitudeMasks(oneShot, { sparsity: o.sparsity ?? 0.5, scope: o.scope ?? 'layer', embeddings: o.embeddings === true, ...(o.exclude ? { exclude: o.exclude } : {}) }));
    accPruned = (await evaluateModel(oneShot, o.dataset!, evalOpts)).accuracy;
  }

  let fineTune: PruneResult['fineTune'];
  let accTuned: number | undefined;
  if (fineTuneSteps) {
    phase(`fine-tuning on ${o.dataset}`);
    const live = masks;
    const prunedNames = masks ? [...masks.keys()] : [];
    const sparsity = o.sparsity ?? 0.5;
    // The schedule needs the run's length: steps given, or epochs × batches per epoch (as the trainer counts them).
    const batchSize = o.batchSize ?? 64;
    const trainCount = openDatasetFeed(o.dataset!, pruned, o.limit !== undefined ? { limit: o.limit } : {}).counts.train;
    const { endStep, every } = gradualSteps(o.steps ?? o.epochs! * Math.ceil(trainCount / batchSize));
    const distill = o.distill ? (o.distill === true ? {} : o.distill) : undefined;
    const r = await trainModel({
      model: pruned,
      dataset: o.dataset!,
      ...(distill ? { teacher: cloneModel(input), loss: { kind: 'distillation' as const, temperature: distill.temperature ?? 2, alpha: distill.alpha ?? 0.5 } } : {}),
      ...(o.steps ? { steps: o.steps } : { epochs: o.epochs! }),
      ...(o.lr !== undefined ? { lr: o.lr } : {}),
      ...(o.optimizer ? { optimizer: o.optimizer } : {}),
      batchSize,
      ...(o.limit !== undefined ? { limit: o.limit } : {}),
      ...(o.evalLimit !== undefined ? { evalLimit: o.evalLimit } : {}),
      seed: o.seed ?? 0,
      ...(o.evaluate === false ? { evaluate: false } : {}),
      ...threads,
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      afterStep: live
        ? (step, weights) => {
            if (gradual) {
              if (step <= endStep && (step % every === 0 || step === endStep)) {
                const target = polynomialSparsity(step, { final: sparsity, endStep });
                const arrays = new Map(prunedNames.filter((n) => weights.has(n)).map((n) => [n, weights.get(n)!] as const));
                for (const [n, m] of masksFromArrays(arrays, target, o.scope ?? 'layer')) live.set(n, m);
              }
            }
            for (const [n, m] of live) {
              const w = weights.get(n);
              if (w) for (let i = 0; i < w.length; i++) if (!m[i]) w[i] = 0;
            }
          }
        : undefined,
    });
    pruned = r.model;
    fineTune = { steps: r.steps, seconds: r.wallSeconds };
    if (scoreTest) accTuned = (await evaluateModel(pruned, o.dataset!, evalOpts)).accuracy;
  }

  const after = costOf(pruned, dims);
  const report = sparsityReport(pruned, { embeddings: o.embeddings === true });
  return {
    model: pruned,
    method: o.method,
    sparsity: report.sparsity,
    parameterCount: { before: before.parameterCount, after: after.parameterCount },
    flops: { before: before.flops, after: after.flops },
    flopsShape: dims,
    ...(accBefore !== undefined ? { accuracy: { before: accBefore, afterPruning: accPruned!, ...(accTuned !== undefined ? { afterFineTune: accTuned } : {}) } } : {}),
    stats: { ...stats, ...(o.method !== 'structured' ? { patterns: report.patterns } : {}) },
    ...(fineTune ? { fineTune } : {}),
  };
}

/** Gradual schedule over the first 3/4 of `total` steps, pruning about 20 times. */
function gradualSteps(total: number): { endStep: number; every: number } {
  const endStep = Math.max(1, Math.floor(0.75 * total));
  return { endStep, every: Math.max(1, Math.floor(endStep / 20)) };
}
