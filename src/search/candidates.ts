/**
 * The optimize search's candidates, as a table (DESIGN principle 7): each row is a pipeline of steps
 * applied to the input model, in the order the search tries them (cheap, data-free transforms first,
 * then the ones that fine-tune). A new technique (efficient attention, say) joins the search by adding a
 * step kind here and rows to the table; the search itself does not change.
 */
import { FrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { applyQuantizeMode, getQuantizeMode } from '../passes/registry.js';
import { cloneModel } from '../training/training-graph.js';
import { pruneModel } from '../training/prune-recipe.js';
import { buildStudent, distillModel } from '../training/distill/index.js';
import { convertAttention } from '../passes/attention/convert.js';
import { fineTuneConverted } from '../training/attention-recovery.js';

/** One step of a pipeline. */
export type PipelineStep =
  | { kind: 'quantize'; mode: string }
  /** Structured pruning removes channels/units/heads (fewer FLOPs); magnitude zeroes weights (same FLOPs). */
  | { kind: 'prune'; method: 'structured' | 'magnitude'; amount: number }
  /** A student derived from the model at `width` of its channels/units, trained by distillation. */
  | { kind: 'distill'; width: number }
  /**
   * Softmax attention replaced by an efficient form (passes/attention), then fine-tuned with the
   * original as teacher. A model without attention cannot be built this way: the row is rejected with
   * the conversion's reason.
   */
  | { kind: 'attention'; form: 'linear' | 'performer' | 'window' | 'block'; window?: number };

/** A row of the candidate table. */
export interface CandidateSpec {
  /** Stable id: also the cache key's pipeline part and the output file's stem. */
  readonly id: string;
  readonly steps: readonly PipelineStep[];
}

/** Whether a step trains (fine-tunes or distils): the expensive ones the cost model may skip. */
export const stepTrains = (s: PipelineStep): boolean => s.kind !== 'quantize';

/** Whether a pipeline trains anywhere. */
export const pipelineTrains = (c: CandidateSpec): boolean => c.steps.some(stepTrains);

/** The id of a step, e.g. `int8-dynamic`, `structured-0.5`, `distill-w0.5`. */
export function stepId(s: PipelineStep): string {
  if (s.kind === 'quantize') return s.mode;
  if (s.kind === 'prune') return `${s.method}-${s.amount}`;
  if (s.kind === 'attention') return `attention-${s.form}${s.window !== undefined ? `-${s.window}` : ''}`;
  return `distill-w${s.width}`;
}

const row = (...steps: PipelineStep[]): CandidateSpec => Object.freeze({ id: steps.map(stepId).join('+'), steps: Object.freeze(steps) });
const q = (mode: string): PipelineStep => ({ kind: 'quantize', mode });
const sp = (amount: number): PipelineStep => ({ kind: 'prune', method: 'structured', amount });
const mp = (amount: number): PipelineStep => ({ kind: 'prune', method: 'magnitude', amount });

/**
 * The default candidates, cheapest first. Unstructured (magnitude) pruning is here for the size of a
 * compressed file; on dense CPU kernels it saves no FLOPs, so the cost model skips it whenever a
 * candidate within the budget already does as well on energy or latency.
 */
export const CANDIDATES: readonly CandidateSpec[] = Object.freeze([
  row(q('fp16')),
  row(q('int8-dynamic')),
  row(q('int8-static')),
  row(q('int4')),
  row(q('q4f16')),
  row(sp(0.25)),
  row(sp(0.5)),
  row(sp(0.75)),
  row(mp(0.5)),
  row(mp(0.8)),
  row(distillStep(0.5)),
  row({ kind: 'attention', form: 'linear' }),
  row(sp(0.25), q('int8-dynamic')),
  row(sp(0.5), q('int8-dynamic')),
  row(sp(0.75), q('int8-dynamic')),
  row(distillStep(0.5), q('int8-dynamic')),
  row({ kind: 'attention', form: 'linear' }, q('int8-dynamic')),
  // Both at once: fewer heads and FFN units, and the remaining attention made linear in the sequence length.
  row(sp(0.5), { kind: 'attention', form: 'linear' }),
  row(sp(0.75), { kind: 'attention', form: 'linear' }),
]);

function distillStep(width: number): PipelineStep {
  return { kind: 'distill', width };
}

/** The candidates whose ids are listed (in table order), or an E_USAGE error naming an unknown one. */
export function selectCandidates(ids?: readonly string[], table: readonly CandidateSpec[] = CANDIDATES): CandidateSpec[] {
  if (!ids || ids.length === 0) return [...table];
  for (const id of ids) {
    if (!table.some((c) => c.id === id)) throw new FrugalError('E_USAGE', `unknown candidate '${id}' (known: ${table.map((c) => c.id).join(', ')})`, { option: 'candidates' });
  }
  return table.filter((c) => ids.includes(c.id));
}

/** What a training step may use: the dataset, which training examples, and for how long. */
export interface StepContext {
  dataset: string;
  /** Fine-tune on training examples [0, trainLimit) only (the validation split lies after them). */
  trainLimit: number;
  epochs: number;
  seed: number;
  /** Calibration samples for int8-static (taken from the start of the training split). */
  calibrationCount: number;
  batchSize: number;
  /** Fine-tuning / distillation learning rate (default: the trainer's). */
  lr?: number;
  intraOpThreads?: number;
  onPhase?: (line: string) => void;
  /**
   * The cost model's preview: the step's structure without data or training (pruning without
   * fine-tuning, the untrained student, int8-static as int8-dynamic), cheap enough to run before
   * deciding whether the real step is worth its fine-tune.
   */
  dryRun?: boolean;
}

async function dryStep(model: Model, step: PipelineStep): Promise<Model> {
  if (step.kind === 'quantize') {
    const mode = step.mode === 'int8-static' ? 'int8-dynamic' : step.mode;
    return (await applyQuantizeMode(cloneModel(model), mode, {})).model;
  }
  if (step.kind === 'prune') return (await pruneModel(model, { method: step.method, ...(step.method === 'structured' ? { ratio: step.amount } : { sparsity: step.amount }) })).model;
  if (step.kind === 'attention') return convertAttention(cloneModel(model), attentionOptions(step)).model;
  return (await buildStudent(model, `width=${step.width}`)).model;
}

function attentionOptions(step: Extract<PipelineStep, { kind: 'attention' }>): Parameters<typeof convertAttention>[1] {
  return { form: step.form, ...(step.window !== undefined ? { window: step.window } : {}) };
}

/**
 * Applies one step to a model (never modifies its input). The search's evaluation happens outside, on
 * the validation split: steps are told not to score anything (pruneModel's `evaluate: false`, the
 * trainer's `evaluate: false`), so no step reads the test split.
 */
export async function applyStep(model: Model, step: PipelineStep, ctx: StepContext): Promise<Model> {
  if (ctx.dryRun) return dryStep(model, step);
  if (step.kind === 'quantize') {
    const mode = getQuantizeMode(step.mode);
    const input = cloneModel(model);
    const calibration = mode.calibrated ? await mode.calibrationFor!(input, ctx.dataset, ctx.calibrationCount, Math.min(32, ctx.batchSize)) : undefined;
    return (await applyQuantizeMode(input, step.mode, calibration ? { calibration } : {})).model;
  }
  // What every training step shares: the data (fine-tuning examples before the validation block), its
  // length, seed, batch, learning rate and threads.
  const training = {
    dataset: ctx.dataset,
    epochs: ctx.epochs,
    limit: ctx.trainLimit,
    seed: ctx.seed,
    batchSize: ctx.batchSize,
    ...(ctx.lr !== undefined ? { lr: ctx.lr } : {}),
    ...(ctx.intraOpThreads ? { intraOpThreads: ctx.intraOpThreads } : {}),
  };
  if (step.kind === 'prune') {
    const amount = step.method === 'structured' ? { ratio: step.amount } : { sparsity: step.amount };
    return (await pruneModel(model, { method: step.method, ...amount, ...training, evaluate: false, ...(ctx.onPhase ? { onPhase: ctx.onPhase } : {}) })).model;
  }
  if (step.kind === 'attention') {
    ctx.onPhase?.(`converting attention to ${step.form} and fine-tuning with the original as teacher`);
    const converted = convertAttention(cloneModel(model), attentionOptions(step)).model;
    return ctx.epochs === 0 ? converted : fineTuneConverted(model, converted, training);
  }
  ctx.onPhase?.(`building a student at width ${step.width} and distilling`);
  // A derived student carries its teacher's metadata (the tokenizer for text), so it is evaluated alike.
  const student = await buildStudent(model, `width=${step.width}`, { seed: ctx.seed });
  return (await distillModel({ teacher: model, student: student.model, ...training, evaluate: false })).model;
}
