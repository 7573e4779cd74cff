/**
 * Losses built as ONNX nodes appended to a graph, so that the autodiff engine differentiates them like
 * any other op and ONNX Runtime runs them with the model. Each loss reads the model's logits
 * [batch, classes] plus one or two extra graph inputs that the trainer feeds per batch, and returns the
 * scalar loss value and the specs of those inputs.
 *
 * - cross-entropy: loss = −mean_b Σ_c target[b,c] · log_softmax(logits)[b,c]. The target is a float
 *   [batch, classes] distribution built in JS by {@link targetDistribution}: label smoothing is
 *   O(batch·classes) bookkeeping, and a distribution input also serves soft labels.
 * - mse: loss = mean over all elements of (logits − target)².
 * - distillation: loss = (1 − α) · T² · mean_b KL(softmax(t/T) ‖ softmax(s/T)) + α · CE(hard target),
 *   with teacher logits t fed as an input (Hinton et al.: the T² keeps gradient magnitudes comparable
 *   across temperatures). α = 0 (default) is pure distillation and needs no hard target.
 */
import { FrugalError } from '../errors.js';
import { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/dtype.js';
import type { Graph } from '../ir/graph.js';
import type { Value } from '../ir/node.js';
import { Tensor } from '../ir/tensor.js';
import { type Shape, shapeOf, tensorType } from '../ir/types.js';

/** Which loss to append, and its parameters. */
export type LossSpec =
  | { kind: 'cross-entropy'; /** ε in [0, 1): target = (1 − ε)·onehot + ε/classes (default 0). */ labelSmoothing?: number }
  | { kind: 'mse' }
  | {
      kind: 'distillation';
      /** Softmax temperature T > 0 (default 2). */
      temperature?: number;
      /** Weight α in [0, 1] of the hard-label cross-entropy term (default 0). */
      alpha?: number;
      /** Label smoothing of the hard-label term. */
      labelSmoothing?: number;
    };

/** An extra graph input a loss reads; the trainer feeds it each step. */
export interface LossInput {
  name: string;
  /**
   * `target`: a float [batch, classes] distribution (or regression target); `teacher`: teacher logits;
   * `auxiliary`: the target of an {@link AuxiliaryLoss}, which the caller feeds (trainer `batchFeeds`).
   */
  role: 'target' | 'teacher' | 'auxiliary';
  elemType: number;
  shape: Shape;
}

export interface BuiltLoss {
  /** The scalar loss value (rank 0). */
  loss: Value;
  /** Inputs the loss added to the graph. */
  inputs: LossInput[];
}

/** Input names the losses use. */
export const LOSS_TARGET_INPUT = 'loss.target';
export const LOSS_TEACHER_INPUT = 'loss.teacher_logits';

/** Checks a loss spec's numbers; throws E_USAGE naming the bad field. */
export function checkLossSpec(spec: LossSpec): void {
  const smoothing = spec.kind === 'mse' ? 0 : spec.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) throw new FrugalError('E_USAGE', `label smoothing must be in [0, 1), got ${smoothing}`);
  if (spec.kind === 'distillation') {
    const t = spec.temperature ?? 2;
    const a = spec.alpha ?? 0;
    if (!(t > 0 && Number.isFinite(t))) throw new FrugalError('E_USAGE', `distillation temperature must be a positive number, got ${t}`, { option: 'temperature' });
    if (!(a >= 0 && a <= 1)) throw new FrugalError('E_USAGE', `distillation alpha must be in [0, 1], got ${a}`, { option: 'alpha' });
  }
}

/**
 * Appends `spec` on top of `logits` (float [batch, classes]) in `graph`, adding its inputs (or reading
 * the `existing` values given for them, which are then not listed in `inputs`). Node and value names
 * start with `loss/` so that they never clash with the model's.
 */
export function appendLoss(graph: Graph, logits: Value, spec: LossSpec, existing: { target?: Value; teacher?: Value } = {}): BuiltLoss {
  checkLossSpec(spec);
  const shape = shapeOf(logits.type);
  if (!shape || shape.length !== 2) {
    throw new FrugalError('E_USAGE', `losses take logits of rank 2 [batch, classes]; '${logits.name}' has shape ${JSON.stringify(shape ?? 'unknown')}`);
  }
  const b = new GraphBuilder(graph);
  const inputs: LossInput[] = [];
  const addInput = (name: string, role: LossInput['role']): Value => {
    const given = role === 'target' ? existing.target : existing.teacher;
    if (given) return given;
    if (graph.lookup(name)) throw new FrugalError('E_USAGE', `the model already has a value named '${name}'; rename it before training`);
    const v = graph.addInput(name, tensorType(DataType.FLOAT, [...shape]));
    inputs.push({ name, role, elemType: DataType.FLOAT, shape: [...shape] });
    return v;
  };
  const k = (name: string, x: number): Value => graph.addInitializer(graph.uniqueName(`loss/${name}`), Tensor.fromArray(DataType.FLOAT, [], [x]));
  // Node names must be unique too (ORT rejects duplicates); value names are made unique by the graph.
  const op = (opType: string, ins: Value[], attrs?: Record<string, number | number[]>, name?: string): Value =>
    b.op(opType, ins, attrs, { name: graph.uniqueNodeName(`loss/${name ?? opType}`) });
  const axes = (a: number[]): Value => graph.addInitializer(graph.uniqueName('loss/axes'), Tensor.fromArray(DataType.INT64, [a.length], BigInt64Array.from(a.map(BigInt))));
  // mean over the batch of Σ over classes: per-row sums first, then ReduceMean over axis 0.
  const meanRowSum = (x: Value): Value => op('ReduceMean', [op('ReduceSum', [x, axes([1])], { keepdims: 0 })], { keepdims: 0 });
  const crossEntropy = (target: Value): Value => op('Mul', [meanRowSum(op('Mul', [target, op('LogSoftmax', [logits], { axis: 1 })])), k('minus_one', -1)], undefined, 'ce');

  let loss: Value;
  if (spec.kind === 'cross-entropy') {
    loss = crossEntropy(addInput(LOSS_TARGET_INPUT, 'target'));
  } else if (spec.kind === 'mse') {
    const d = op('Sub', [logits, addInput(LOSS_TARGET_INPUT, 'target')]);
    loss = op('ReduceMean', [op('Mul', [d, d])], { keepdims: 0 }, 'mse');
  } else {
    const T = spec.temperature ?? 2;
    const alpha = spec.alpha ?? 0;
    const teacher = addInput(LOSS_TEACHER_INPUT, 'teacher');
    const invT = k('inv_temperature', 1 / T);
    const logPt = op('LogSoftmax', [op('Mul', [teacher, invT])], { axis: 1 }, 'teacher_log_probs');
    const pt = op('Softmax', [op('Mul', [teacher, invT])], { axis: 1 }, 'teacher_probs');
    const logPs = op('LogSoftmax', [op('Mul', [logits, invT])], { axis: 1 }, 'student_log_probs');
    // KL(pt ‖ ps) = Σ pt (log pt − log ps); the log pt term carries no gradient but makes the value a true KL (0 at a match).
    const kl = meanRowSum(op('Mul', [pt, op('Sub', [logPt, logPs])]));
    loss = op('Mul', [kl, k('kd_weight', (1 - alpha) * T * T)], undefined, 'kd');
    if (alpha > 0) loss = op('Add', [loss, op('Mul', [crossEntropy(addInput(LOSS_TARGET_INPUT, 'target')), k('ce_weight', alpha)])], undefined, 'total');
  }
  loss.type = tensorType(DataType.FLOAT, []);
  return { loss, inputs };
}

/**
 * An extra loss term on another output of the forward model: weight · mean((output − input)²), with
 * `input` a new graph input of the output's shape that the caller feeds each batch. Distillation uses it
 * for the hidden-state loss (the student's projected hidden state against the teacher's, TinyBERT).
 */
export interface AuxiliaryLoss {
  /** A graph output of the forward model (other than the logits). */
  output: string;
  /** Name of the graph input that holds its target. */
  input: string;
  /** Weight of the term (> 0). */
  weight: number;
}

/** Adds `aux` to `loss` in `graph`; returns the new total and the input it added. */
export function appendAuxiliaryLoss(graph: Graph, loss: Value, aux: AuxiliaryLoss): { loss: Value; input: LossInput } {
  const out = graph.outputs.find((v) => v.name === aux.output);
  if (!out) throw new FrugalError('E_USAGE', `auxiliary loss: '${aux.output}' is not an output of the model`);
  if (!(aux.weight > 0 && Number.isFinite(aux.weight))) throw new FrugalError('E_USAGE', `auxiliary loss on '${aux.output}': weight must be a positive number, got ${aux.weight}`);
  if (graph.lookup(aux.input)) throw new FrugalError('E_USAGE', `the model already has a value named '${aux.input}'`);
  const shape = shapeOf(out.type);
  if (!shape) throw new FrugalError('E_USAGE', `auxiliary loss: output '${aux.output}' has no declared shape`);
  const target = graph.addInput(aux.input, tensorType(DataType.FLOAT, [...shape]));
  const b = new GraphBuilder(graph);
  const op = (opType: string, ins: Value[], attrs?: Record<string, number>): Value => b.op(opType, ins, attrs, { name: graph.uniqueNodeName(`loss/aux/${opType}`) });
  const d = op('Sub', [out, target]);
  const w = graph.addInitializer(graph.uniqueName('loss/aux_weight'), Tensor.fromArray(DataType.FLOAT, [], [aux.weight]));
  const total = op('Add', [loss, op('Mul', [op('ReduceMean', [op('Mul', [d, d])], { keepdims: 0 }), w])]);
  total.type = tensorType(DataType.FLOAT, []);
  return { loss: total, input: { name: aux.input, role: 'auxiliary', elemType: DataType.FLOAT, shape: [...shape] } };
}

/**
 * The cross-entropy target distribution for integer labels: (1 − ε)·onehot + ε/classes per row, as a
 * float32 [labels.length, classes] array.
 */
export function targetDistribution(labels: ArrayLike<number>, classes: number, smoothing = 0): Float32Array {
  const out = new Float32Array(labels.length * classes).fill(smoothing / classes);
  const hit = 1 - smoothing + smoothing / classes;
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= classes) throw new FrugalError('E_DATA', `label ${c} at row ${i} is outside [0, ${classes})`);
    out[i * classes + c] = hit;
  }
  return out;
}
