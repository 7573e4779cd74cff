/**
 * `frugal optimize`: the cheapest model on an objective (energy, latency or size) within an accuracy
 * budget. Candidates (candidates.ts, a table of pipelines) are built cheapest first, scored on a
 * validation split carved out of the training split (validation.ts; the test split is never read),
 * cached on disk (cache.ts), then profiled side by side with the reference; the choice is the cheapest
 * candidate on the objective whose validation accuracy is at most `maxDropPoints` below the reference's.
 *
 * Before a candidate that trains, the cost model previews it (its structure without training: FLOPs for
 * energy and latency, encoded bytes for size). When the preview is no cheaper than the best candidate
 * already within the budget, the fine-tune cannot win and is skipped; so is a pipeline whose prefix was
 * already rejected for accuracy. The time budget is checked between candidates, keeping back the time
 * the final profiling will need; when it runs out the search returns the best so far, with a note.
 */
import { FrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { decodeModel, encodeModelToBytes } from '../onnx/index.js';
import { evaluateModel } from '../evaluation/evaluate.js';
import { profileModels } from '../profiling/profiler.js';
import type { CarbonOptions } from '../profiling/carbon.js';
import type { ProfileRecord } from '../profiling/records.js';
import { costDims, costOf } from '../training/prune-recipe.js';
import { getDataset } from '../data/index.js';
import { applyStep, type CandidateSpec, CANDIDATES, pipelineTrains, type StepContext, stepId, stepTrains } from './candidates.js';
import { CandidateCache, cacheKey, sha256 } from './cache.js';
import { paretoFront } from './pareto.js';
import { type SearchSplits, validationFeed, validationOverlapNote } from './validation.js';

export const OBJECTIVES = Object.freeze(['energy', 'latency', 'size'] as const);
export type Objective = (typeof OBJECTIVES)[number];

/** Per-dataset defaults: validation size, fine-tuning examples, evaluation batch, profiling shapes. */
export const SEARCH_DEFAULTS = Object.freeze({
  mnist: Object.freeze({ validation: 1000, trainLimit: 2000, evalBatch: 256, lr: undefined, shapes: undefined }),
  // Attention scores are batch × heads × 512 × 512 floats: small batches keep memory bounded (demo.ts).
  // Fine-tuning lr 1e-4: the default 1e-3 lost accuracy while fine-tuning this transformer (bench/prune.ts).
  spam: Object.freeze({ validation: 400, trainLimit: 256, evalBatch: 16, lr: 1e-4, shapes: { input_ids: [1, 512], attention_mask: [1, 512] } }),
});

/**
 * Profiles models side by side as the search does (batch 1, one ONNX Runtime thread: a spinning pool would
 * make CPU-time energy estimates noisy; text models at the dataset's full sequence length). Exported so a
 * re-measurement (bench/optimize.ts) uses exactly the search's settings.
 */
export function profileSideBySide(
  models: ReadonlyArray<{ name: string; model: Model | Uint8Array; accuracy?: number }>,
  dataset: string,
  o: { warmup?: number; profileSeconds?: number; carbon?: CarbonOptions } = {},
): Promise<ProfileRecord> {
  const shapes = SEARCH_DEFAULTS[dataset as keyof typeof SEARCH_DEFAULTS]?.shapes;
  return profileModels(
    models.map((m) => ({ name: m.name, model: m.model instanceof Uint8Array ? m.model : encodeModelToBytes(m.model), ...(m.accuracy !== undefined ? { accuracy: m.accuracy } : {}) })),
    { batch: 1, threads: 1, warmup: o.warmup ?? 3, durationSeconds: o.profileSeconds ?? 1, ...(shapes ? { shapes } : {}), ...(o.carbon ? { carbon: o.carbon } : {}) },
  );
}

export interface SearchOptions {
  /** The model to optimize (never modified). */
  model: Model;
  dataset: 'mnist' | 'spam' | string;
  /** Largest allowed drop in validation accuracy, in points (percent), ≥ 0. */
  maxDropPoints: number;
  objective?: Objective;
  /** Wall-clock budget in seconds (default: none). */
  budgetSeconds?: number;
  /** The candidate table (default CANDIDATES). */
  candidates?: readonly CandidateSpec[];
  /** Cache folder (default: none, nothing cached). */
  cacheDir?: string;
  seed?: number;
  /** Validation examples, from the end of the training split. */
  validationCount?: number;
  /** Fine-tuning examples, from the start of the training split. */
  trainLimit?: number;
  /** Fine-tuning epochs (default 1). */
  epochs?: number;
  /** int8-static calibration examples (default 64). */
  calibrationCount?: number;
  /** Seconds of measured runs per model when profiling (default 1). */
  profileSeconds?: number;
  warmup?: number;
  carbon?: CarbonOptions;
  intraOpThreads?: number;
  onProgress?: (line: string, state: SearchProgress) => void;
  /** Seconds on a monotonic clock (default performance.now()/1000); tests pass a fake one to test the budget. */
  clock?: () => number;
}

/** Where the search is, for progress displays. */
export interface SearchProgress {
  candidate: string;
  /** 1-based. */
  index: number;
  total: number;
  /** The best candidate within the budget so far (by the cost model until profiling). */
  best: string;
}

export type CandidateStatus = 'evaluated' | 'rejected' | 'skipped';

export interface CandidateResult {
  pipeline: string;
  status: CandidateStatus;
  /** Why rejected or skipped. */
  reason?: string;
  /** `cost-model`, `prefix-rejected` or `budget` for skipped candidates. */
  skippedBy?: 'cost-model' | 'prefix-rejected' | 'budget';
  cached: boolean;
  /** Validation accuracy (0–1). */
  accuracy?: number;
  /** accuracy − the reference's, in points. */
  accuracyDeltaPoints?: number;
  sizeBytes?: number;
  /** FLOPs per example from the cost model (null where it cannot tell). */
  flops?: number | null;
  latencyP50Ms?: number;
  latencyRatio?: number;
  joulesPerInference?: number | null;
  whPer1000?: number | null;
  gCo2ePer1000?: number | null;
  /** `measured:…` or `estimated:…`. */
  energySource?: string;
  rating?: number | null;
  pareto: boolean;
  buildSeconds?: number;
  /** The built model (absent for skipped and failed candidates). */
  model?: Model;
}

export interface SearchResult {
  dataset: string;
  objective: Objective;
  maxDropPoints: number;
  splits: SearchSplits;
  /** The input model, measured like the candidates (pipeline `fp32`). */
  reference: CandidateResult;
  candidates: CandidateResult[];
  /** Chosen: the cheapest evaluated candidate on the objective; null when none is within the drop. */
  chosen: CandidateResult | null;
  /** Reference and candidates on the accuracy/objective Pareto front. */
  front: CandidateResult[];
  /** Fine-tunes the cost model and the prefix rule saved. */
  fineTunesSaved: number;
  searchSeconds: number;
  notes: string[];
  record: ProfileRecord | null;
}

/** The figure the objective minimises (null when unknown). */
export function objectiveValue(c: CandidateResult, objective: Objective): number | null {
  if (objective === 'size') return c.sizeBytes ?? null;
  if (objective === 'latency') return c.latencyP50Ms ?? null;
  return c.joulesPerInference ?? null;
}

/**
 * The choice: among evaluated candidates whose accuracy drop is within `maxDropPoints`, the one with the
 * lowest objective (ties to the more accurate, then to table order); null when none qualifies.
 */
export function chooseCandidate(cands: readonly CandidateResult[], objective: Objective, maxDropPoints: number): CandidateResult | null {
  let best: CandidateResult | null = null;
  for (const c of cands) {
    const v = objectiveValue(c, objective);
    if (c.status !== 'evaluated' || v === null || c.accuracyDeltaPoints === undefined || c.accuracyDeltaPoints < -maxDropPoints - 1e-9) continue;
    const b = best ? objectiveValue(best, objective)! : Infinity;
    if (v < b || (v === b && best && c.accuracy! > best.accuracy!)) best = c;
  }
  return best;
}

function checkOptions(o: SearchOptions): void {
  getDataset(o.dataset);
  if (!(Number.isFinite(o.maxDropPoints) && o.maxDropPoints >= 0)) throw new FrugalError('E_USAGE', `the accuracy drop must be a number of points ≥ 0, got ${o.maxDropPoints}`, { option: 'maxDrop' });
  if (o.objective !== undefined && !OBJECTIVES.includes(o.objective)) throw new FrugalError('E_USAGE', `unknown objective '${o.objective}' (known: ${OBJECTIVES.join(', ')})`, { option: 'objective' });
  if (o.budgetSeconds !== undefined && !(o.budgetSeconds > 0)) throw new FrugalError('E_USAGE', `the time budget must be positive, got ${o.budgetSeconds} s`, { option: 'budget' });
  if (o.epochs !== undefined && !(Number.isInteger(o.epochs) && o.epochs >= 1)) throw new FrugalError('E_USAGE', `fine-tuning epochs must be an integer ≥ 1, got ${o.epochs}`, { option: 'epochs' });
}

/** Runs the search. Builds nothing on disk except cache entries; see writeSearchOutputs for files. */
export async function searchCandidates(o: SearchOptions): Promise<SearchResult> {
  checkOptions(o);
  const clock = o.clock ?? ((): number => performance.now() / 1000);
  const t0 = clock();
  const elapsed = (): number => clock() - t0;
  const objective = o.objective ?? 'energy';
  const defaults = SEARCH_DEFAULTS[o.dataset as 'mnist' | 'spam'];
  const seed = o.seed ?? 0;
  const table = o.candidates ?? CANDIDATES;
  const profileSeconds = o.profileSeconds ?? 1;
  const warmup = o.warmup ?? 3;
  const say = o.onProgress ?? (() => {});
  const notes: string[] = [];

  // Opening the feed checks that the dataset fits the model (one clear error, before any work).
  let opened;
  try {
    opened = validationFeed(o.dataset, o.model, o.validationCount ?? defaults.validation, o.trainLimit ?? defaults.trainLimit);
  } catch (e) {
    if (e instanceof FrugalError && e.code === 'E_USAGE' && !e.option) throw new FrugalError('E_USAGE', `--dataset ${o.dataset} does not fit this model: ${e.message}`, { cause: e });
    throw e;
  }
  const { feed, splits } = opened;
  const overlap = validationOverlapNote(splits);
  if (overlap) notes.push(overlap);
  const inputBytes = encodeModelToBytes(o.model);
  const modelHash = sha256(inputBytes);
  const ctx: StepContext = {
    dataset: o.dataset,
    trainLimit: splits.trainLimit,
    epochs: o.epochs ?? 1,
    seed,
    calibrationCount: Math.min(o.calibrationCount ?? 64, splits.trainLimit),
    batchSize: o.dataset === 'spam' ? 16 : 64,
    ...(defaults.lr !== undefined ? { lr: defaults.lr } : {}),
    ...(o.intraOpThreads ? { intraOpThreads: o.intraOpThreads } : {}),
  };
  const settings = { dataset: o.dataset, lr: ctx.lr ?? null, trainLimit: ctx.trainLimit, epochs: ctx.epochs, calibrationCount: ctx.calibrationCount, batchSize: ctx.batchSize, validation: [splits.validationStart, splits.validationCount] };
  const cache = o.cacheDir ? new CandidateCache(o.cacheDir) : undefined;
  const keyOf = (pipeline: string): string => cacheKey(modelHash, pipeline, seed, settings);
  const dims = costDims(o.model);
  const proxyOf = (m: Model, bytes?: Uint8Array): number | null => (objective === 'size' ? (bytes ?? encodeModelToBytes(m)).byteLength : costOf(m, dims).flops);
  const evaluate = async (m: Model): Promise<number> => (await evaluateModel(m, o.dataset, { feed, batchSize: defaults.evalBatch, ...(o.intraOpThreads ? { intraOpThreads: o.intraOpThreads } : {}) })).accuracy;

  say(`scoring the reference on ${splits.validationCount} validation examples`, { candidate: 'fp32', index: 0, total: table.length, best: 'fp32' });
  const reference: CandidateResult = { pipeline: 'fp32', status: 'evaluated', cached: false, accuracy: await evaluate(o.model), accuracyDeltaPoints: 0, sizeBytes: inputBytes.byteLength, flops: costOf(o.model, dims).flops, pareto: false, model: o.model };
  const results: CandidateResult[] = [];
  const within = (c: CandidateResult): boolean => c.status === 'evaluated' && c.accuracyDeltaPoints! >= -o.maxDropPoints - 1e-9;
  // The best within the budget by the cost model: what a fine-tune must beat to be worth running.
  let bestProxy = { pipeline: 'fp32', value: proxyOf(o.model, inputBytes) };
  let fineTunesSaved = 0;
  let budgetHit = false;

  // Trained models by pipeline prefix id, kept for the rest of this run.
  const trained = new Map<string, Model>();
  const findPrefix = (spec: CandidateSpec): { start: number; model: Model; id: string } => {
    for (let k = spec.steps.length - 1; k >= 1; k--) {
      if (!spec.steps.slice(0, k).some(stepTrains)) break;
      const id = spec.steps.slice(0, k).map(stepId).join('+');
      const mem = trained.get(id);
      if (mem) return { start: k, model: mem, id };
      const e = cache?.get(keyOf(id));
      if (e) return { start: k, model: decodeModel(e.bytes), id };
    }
    return { start: 0, model: o.model, id: '' };
  };
  for (const [i, spec] of table.entries()) {
    const at: SearchProgress = { candidate: spec.id, index: i + 1, total: table.length, best: bestProxy.pipeline };
    const line = (what: string): void => say(`[${i + 1}/${table.length}] ${spec.id}: ${what} (best so far: ${bestProxy.pipeline})`, at);
    // A pipeline that does not apply to this model (no attention to convert, nothing prunable) is rejected
    // with the reason, in the cost model's preview or while building; other errors propagate.
    const rejectUnbuildable = (e: unknown): void => {
      if (!(e instanceof FrugalError) || e.code === 'E_INTERNAL') throw e;
      results.push({ pipeline: spec.id, status: 'rejected', reason: `it could not be built: ${e.message}`, cached: false, pareto: false });
      line('rejected (could not be built)');
    };
    // Profiling every built model at the end takes about (warm-up + window) each: keep that time back.
    const reserve = (results.filter((r) => r.model).length + 2) * (profileSeconds + 0.5);
    if (budgetHit || (o.budgetSeconds !== undefined && elapsed() + reserve > o.budgetSeconds)) {
      budgetHit = true;
      results.push({ pipeline: spec.id, status: 'skipped', skippedBy: 'budget', reason: 'the time budget ran out before it was tried', cached: false, pareto: false });
      continue;
    }
    // The longest trained prefix already at hand (this run, or the disk cache): a pruned model reused
    // under int8, say. Only the steps after it are run.
    const prefix = findPrefix(spec);
    const stillTrains = spec.steps.slice(prefix.start).some(stepTrains);
    const rejectedPrefix = results.find((r) => r.status === 'rejected' && r.accuracy !== undefined && spec.id.startsWith(`${r.pipeline}+`));
    if (rejectedPrefix && pipelineTrains(spec)) {
      if (stillTrains) fineTunesSaved++;
      results.push({ pipeline: spec.id, status: 'skipped', skippedBy: 'prefix-rejected', reason: `its prefix ${rejectedPrefix.pipeline} already drops more than ${o.maxDropPoints} points`, cached: false, pareto: false });
      line('skipped (prefix rejected)');
      continue;
    }
    let hit = cache?.get(keyOf(spec.id));
    if (hit && hit.info.validationAccuracy === undefined) hit = undefined;
    if (!hit && stillTrains && bestProxy.value !== null) {
      // Preview the structure without training: a fine-tune that cannot beat the best is not run.
      line('cost model preview');
      let preview = o.model;
      try {
        for (const s of spec.steps) preview = await applyStep(preview, s, { ...ctx, dryRun: true });
      } catch (e) {
        rejectUnbuildable(e);
        continue;
      }
      const value = proxyOf(preview);
      if (value !== null && value >= bestProxy.value) {
        fineTunesSaved++;
        const unit = objective === 'size' ? 'bytes' : 'FLOPs';
        results.push({ pipeline: spec.id, status: 'skipped', skippedBy: 'cost-model', reason: `the cost model gives ${value} ${unit}, no fewer than ${bestProxy.pipeline}'s ${bestProxy.value}, so its fine-tune cannot win`, cached: false, pareto: false, flops: costOf(preview, dims).flops });
        line('skipped by the cost model');
        continue;
      }
    }
    const tb = performance.now();
    let model: Model;
    let accuracy: number;
    let cached = false;
    try {
      if (hit) {
        line('cached');
        model = decodeModel(hit.bytes);
        accuracy = hit.info.validationAccuracy!;
        cached = true;
      } else {
        model = prefix.model;
        if (prefix.start > 0) line(`reusing the trained ${prefix.id}`);
        for (let k = prefix.start; k < spec.steps.length; k++) {
          const step = spec.steps[k]!;
          line(`${stepId(step)}${step.kind === 'quantize' ? '' : ` (training on ${ctx.trainLimit} examples, ${ctx.epochs} epoch${ctx.epochs === 1 ? '' : 's'})`}`);
          model = await applyStep(model, step, { ...ctx, onPhase: (l) => line(l) });
          if (stepTrains(step)) trained.set(spec.steps.slice(0, k + 1).map(stepId).join('+'), model);
          if (cache && k < spec.steps.length - 1 && stepTrains(step)) {
            await cache.put(keyOf(spec.steps.slice(0, k + 1).map(stepId).join('+')), encodeModelToBytes(model), { pipeline: spec.id, buildSeconds: (performance.now() - tb) / 1000 });
          }
        }
        line(`scoring on ${splits.validationCount} validation examples`);
        accuracy = await evaluate(model);
      }
    } catch (e) {
      rejectUnbuildable(e);
      continue;
    }
    const bytes = encodeModelToBytes(model);
    const buildSeconds = cached ? hit!.info.buildSeconds : (performance.now() - tb) / 1000;
    if (cache && !cached) await cache.put(keyOf(spec.id), bytes, { pipeline: spec.id, validationAccuracy: accuracy, validationCount: splits.validationCount, buildSeconds });
    const delta = (accuracy - reference.accuracy!) * 100;
    const r: CandidateResult = { pipeline: spec.id, status: 'evaluated', cached, accuracy, accuracyDeltaPoints: delta, sizeBytes: bytes.byteLength, flops: costOf(model, dims).flops, pareto: false, buildSeconds, model };
    if (!within(r)) {
      r.status = 'rejected';
      r.reason = `validation accuracy drops ${(-delta).toFixed(2)} points, more than --max-drop ${o.maxDropPoints}`;
    } else {
      const value = proxyOf(model, bytes);
      if (value !== null && (bestProxy.value === null || value < bestProxy.value)) bestProxy = { pipeline: spec.id, value };
    }
    results.push(r);
    line(r.status === 'evaluated' ? `accuracy ${(accuracy * 100).toFixed(2)}% (${delta >= 0 ? '+' : ''}${delta.toFixed(2)} points)` : `rejected: ${r.reason}`);
  }
  if (budgetHit) {
    const tried = results.filter((r) => r.skippedBy !== 'budget').length;
    notes.push(`the time budget of ${o.budgetSeconds} s ran out after ${tried} of ${table.length} candidates; the choice is the best of those tried (a rerun with the same cache resumes without retraining)`);
  }

  // Profile the reference and every built candidate side by side (same run, same settings).
  const built = [reference, ...results.filter((r) => r.model)];
  say(`profiling ${built.length} models side by side`, { candidate: 'profile', index: table.length, total: table.length, best: bestProxy.pipeline });
  const record = await profileSideBySide(
    built.map((c) => ({ name: c.pipeline, model: c.model!, accuracy: c.accuracy! })),
    o.dataset,
    { warmup, profileSeconds, ...(o.carbon ? { carbon: o.carbon } : {}) },
  );
  built.forEach((c, k) => {
    const p = record.models[k]!;
    c.latencyP50Ms = p.latencyMs.p50;
    c.latencyRatio = p.latencyMs.p50 / record.models[0]!.latencyMs.p50;
    c.joulesPerInference = p.energy.joulesPerInference;
    c.whPer1000 = p.energy.whPer1000Inferences;
    c.gCo2ePer1000 = p.carbon ? p.carbon.gramsPerInference * 1000 : null;
    c.energySource = p.energy.sources.join(' + ') || 'none';
    c.rating = p.rating;
  });
  if (objective === 'energy' && built.some((c) => c.joulesPerInference === null)) notes.push('some energy windows were too short to measure; those models cannot be chosen on energy (raise the profiling time)');
  const marks = paretoFront(built.map((c) => ({ accuracy: c.accuracy ?? null, cost: objectiveValue(c, objective) })));
  built.forEach((c, k) => (c.pareto = marks[k]!));
  const chosen = chooseCandidate(results, objective, o.maxDropPoints);
  const tried = results.some((r) => r.status !== 'skipped');
  if (!chosen && !tried && budgetHit) notes.push('no candidate was tried before the time budget ran out (it keeps back time to profile the models); raise --budget');
  else if (!chosen) notes.push(`no candidate stays within --max-drop ${o.maxDropPoints} points of the reference's validation accuracy; the front is listed`);
  else if (objectiveValue(chosen, objective)! >= objectiveValue(reference, objective)!) notes.push(`the chosen candidate is no cheaper on ${objective} than the reference here`);
  return { dataset: o.dataset, objective, maxDropPoints: o.maxDropPoints, splits, reference, candidates: results, chosen, front: built.filter((c) => c.pareto), fineTunesSaved, searchSeconds: elapsed(), notes, record };
}
