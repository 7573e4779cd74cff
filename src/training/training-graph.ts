/**
 * From a forward (inference) model to the training model ONNX Runtime runs each step:
 *
 *   clone → prepareForTraining (BatchNormalization in training mode, Dropout on) → trainable
 *   initializers become graph inputs → loss appended → backward pass appended (autodiff) →
 *   outputs: loss, logits, one gradient per weight, the updated running statistics
 *   (with `fusedOptimizer`: loss, logits, running statistics, then updated weights and optimizer state
 *   instead of gradients; see optimizers/in-graph.ts).
 *
 * Weights are inputs, not initializers, so that one session serves every step: the updated weights
 * are fed again (feeding is zero-copy in onnxruntime-node). Frozen
 * weights stay initializers, and the autodiff engine does no gradient work for them.
 */
import { FrugalError } from '../errors.js';
import { DataType } from '../ir/dtype.js';
import type { Graph } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import type { Value } from '../ir/node.js';
import { eliminateDeadCode } from '../ir/traversal.js';
import { tensorType } from '../ir/types.js';
import { decodeModel, encodeModelToBytes } from '../onnx/index.js';
import { differentiate } from './autodiff/engine.js';
import { appendOptimizerUpdate, type FusedBinding } from './optimizers/in-graph.js';
import { appendAuxiliaryLoss, appendLoss, type AuxiliaryLoss, type LossInput, type LossSpec } from './losses.js';
import type { OptimizerConfig } from './optimizers/reference.js';
import { type BatchNormStats, prepareForTraining } from './prepare.js';
import { convertToFloat16 } from '../passes/precision/fp16.js';

export interface BuildTrainingOptions {
  /** Initializers to train (default: every float initializer of rank ≥ 1 that reaches the logits). */
  trainable?: string[];
  loss: LossSpec;
  /** Run Dropout nodes in training mode (default true). */
  dropout?: boolean;
  /**
   * Append the optimizer update (and clipping) to the graph (optimizers/in-graph.ts): the graph then takes
   * optimizer state and step scalars as inputs and outputs updated weights and state instead of gradients.
   */
  fusedOptimizer?: { config: OptimizerConfig; clipNorm?: number };
  /**
   * `fp16`: mixed precision (see {@link toMixedPrecision}): weights and activations in float16, the loss
   * and the ops listed in `MIXED_PRECISION_FP32_OPS` in float32, and a scalar `loss_scale` input that
   * seeds the backward pass (gradients come out multiplied by it). Not combinable with `fusedOptimizer`:
   * the fp32 master weights live outside the graph.
   */
  precision?: 'fp32' | 'fp16';
  /** Extra MSE terms on other outputs of the forward model (see {@link AuxiliaryLoss}); their weights train too. */
  auxiliaryLosses?: AuxiliaryLoss[];
}

/**
 * Ops a mixed-precision training graph keeps in float32 besides the fp16 pass's own block list (which
 * already keeps Exp, Pow and the sums): normalizations and (log-)softmax, whose reductions lose too much
 * in float16 — the ops PyTorch's autocast runs in float32 too. BatchNormalization is rewritten into
 * primitive ops before conversion (prepare.ts), and those nodes are kept in float32 by name.
 */
export const MIXED_PRECISION_FP32_OPS: readonly string[] = Object.freeze(['Softmax', 'LogSoftmax', 'LayerNormalization', 'ReduceMean', 'BatchNormalization']);

/** Graph input of a mixed-precision training graph: the loss scale S (float32 scalar, fed each step). */
export const LOSS_SCALE_INPUT = 'loss_scale';

/** A trainable weight in the training model. */
export interface WeightBinding {
  /** Graph input name (the initializer's name in the forward model). */
  name: string;
  dims: number[];
  /** Graph output holding d loss / d weight ('' in a fused graph, which outputs updated weights instead). */
  gradient: string;
  /**
   * The weight's type in the training graph, which is also its gradient's: always float32 unless the
   * graph is mixed precision (then the fp32-kept ops' weights, e.g. BatchNormalization's, stay float32).
   */
  dtype: 'float32' | 'float16';
  /** Apply weight decay to it: rank ≥ 2 (matrices and kernels, not biases or norm scales). */
  decay: boolean;
}

/** A running statistic: fed as `input`, its updated value read from `output` after each step. */
export interface StatBinding {
  input: string;
  output: string;
  dims: number[];
}

/** How to feed and read the training model. */
export interface TrainingBinding {
  /** The forward model's data inputs (e.g. `input`, or `input_ids` + `attention_mask`). */
  dataInputs: string[];
  weights: WeightBinding[];
  lossInputs: LossInput[];
  /** Scalar loss output. */
  loss: string;
  /** Logits output [batch, classes] (the forward model's first output). */
  logits: string;
  runningStats: StatBinding[];
  /** Present when the optimizer update is part of the graph. */
  fused?: FusedBinding;
  /** Mixed precision: the loss-scale input ({@link LOSS_SCALE_INPUT}); gradients are scaled by it. */
  lossScale?: string;
}

export interface TrainingModel {
  model: Model;
  binding: TrainingBinding;
}

/** A deep copy of a model (encode + decode; tensors are views into the new bytes). */
export function cloneModel(model: Model): Model {
  return decodeModel(encodeModelToBytes(model));
}

/** Float initializers of rank ≥ 1 that the value `target` depends on, in file order. */
export function floatInitializersReaching(graph: Graph, target: Value): string[] {
  const needed = new Set<Value>([target]);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    for (const v of n.inputs) if (v) needed.add(v);
    // Values read by subgraphs count too.
    for (const g of n.subgraphs()) for (const sn of g.nodes) for (const v of sn.inputs) if (v) needed.add(v);
  }
  return graph
    .initializers()
    .filter((v) => needed.has(v) && v.initializer!.dtype === DataType.FLOAT && v.initializer!.dims.length >= 1)
    .map((v) => v.name);
}

/**
 * Turns initializer `name` into a graph input of the same name, type and shape; returns its dims and
 * type. float16 is accepted only where the graph itself was converted (`allowHalf`, mixed precision):
 * a model stored in float16 is refused, since its weights cannot serve as fp32 master copies.
 */
function initializerToInput(graph: Graph, name: string, what: string, allowHalf = false): { dims: number[]; dtype: 'float32' | 'float16' } {
  const v = graph.values.get(name);
  if (!v || !v.initializer) throw new FrugalError('E_USAGE', `${what} '${name}' is not an initializer of the model`);
  const t = v.initializer;
  const half = allowHalf && t.dtype === DataType.FLOAT16;
  if (t.dtype !== DataType.FLOAT && !half) throw new FrugalError('E_UNSUPPORTED', `${what} '${name}' is ${t.dtype === DataType.FLOAT16 ? 'float16' : `of type ${t.dtype}`}; training reads float32 weights (convert the model to fp32 first)`);
  const dims = t.dims.map(Number);
  graph.removeInitializer(v);
  v.type = tensorType(t.dtype, dims);
  graph.inputs.push(v);
  return { dims, dtype: half ? 'float16' : 'float32' };
}

/**
 * Converts a prepared (training-mode) model to mixed precision in place with the fp16 pass: float16
 * weights and activations, float32 inputs, outputs and `MIXED_PRECISION_FP32_OPS`, and every node the
 * BatchNormalization rewrite made (named `<bn>/...`) kept in float32 with its running statistics. On
 * the CPU provider the float16 ops mostly compute in float32 between Casts that ORT inserts (fp16-ops.ts):
 * storage and rounding are float16's, which is what loss scaling is about; speed needs an fp16 provider.
 */
function toMixedPrecision(model: Model, batchNorms: readonly BatchNormStats[]): void {
  const prefixes = batchNorms.map((s) => `${s.node || 'batchnorm'}/`);
  const excludeNodes = model.graph.nodes.filter((n) => prefixes.some((p) => n.name.startsWith(p))).map((n) => n.name);
  convertToFloat16(model, { to: 'float16', provider: 'cpu', blockOps: MIXED_PRECISION_FP32_OPS, excludeNodes });
}

/** The float32 contents of initializers by name (copies). */
export function initializerArrays(model: Model, names: readonly string[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const n of names) {
    const t = model.graph.values.get(n)?.initializer;
    if (!t) throw new FrugalError('E_USAGE', `'${n}' is not an initializer of the model`);
    if (t.dtype !== DataType.FLOAT) throw new FrugalError('E_UNSUPPORTED', `initializer '${n}' is not float32`);
    out.set(n, Float32Array.from(t.toArray() as Float32Array));
  }
  return out;
}

/**
 * Builds the training model for `forward` (left untouched). Throws E_UNSUPPORTED naming the op and node
 * when an op between a trainable weight and the loss has no gradient rule.
 */
export function buildTrainingModel(forward: Model, opts: BuildTrainingOptions): TrainingModel {
  if (!forward.graph.outputs[0]) throw new FrugalError('E_INVALID_MODEL', 'the model has no outputs');
  const mixed = opts.precision === 'fp16';
  if (mixed && opts.fusedOptimizer) throw new FrugalError('E_USAGE', 'mixed-precision training keeps fp32 master weights outside the graph: it cannot use the fused optimizer');
  // prepareForTraining works on a clone; the forward model stays untouched.
  const prepared = prepareForTraining(forward, { dropout: opts.dropout ?? true });
  const model = prepared.model;
  const graph = model.graph;
  const logits = graph.outputs[0]!;
  const dataInputs = graph.inputs.map((v) => v.name);

  const statInputs = new Set(prepared.batchNorms.flatMap((s) => [s.meanInput, s.varInput]));
  const aux = opts.auxiliaryLosses ?? [];
  // With auxiliary outputs, weights reaching any of them train too (e.g. a hidden-state projection).
  const reaching = aux.length
    ? ((set) => graph.initializers().map((v) => v.name).filter((n) => set.has(n)))(new Set([logits, ...aux.map((a) => graph.outputs.find((o) => o.name === a.output) ?? logits)].flatMap((o) => floatInitializersReaching(graph, o))))
    : floatInitializersReaching(graph, logits);
  const trainable = opts.trainable ?? reaching.filter((n) => !statInputs.has(n));
  if (!trainable.length) {
    // A model converted to fp16 for deployment has only float16 weights: say so, it is the likely case.
    if (graph.initializers().some((v) => v.initializer!.dtype === DataType.FLOAT16 && v.initializer!.dims.length >= 1)) {
      throw new FrugalError('E_UNSUPPORTED', 'the model stores its weights in float16; training needs the float32 model (for fp16 training, pass the fp32 model with precision fp16 / --precision fp16)');
    }
    throw new FrugalError('E_USAGE', 'nothing to train: the model has no float initializers of rank ≥ 1 reaching its output');
  }
  const unknown = trainable.filter((n) => !graph.values.get(n)?.initializer);
  if (unknown.length) throw new FrugalError('E_USAGE', `trainable tensor${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')} not found among the model's initializers`);

  if (mixed) toMixedPrecision(model, prepared.batchNorms);

  const weights: WeightBinding[] = trainable.map((name) => {
    const input = initializerToInput(graph, name, 'trainable weight', mixed);
    return { name, ...input, decay: input.dims.length >= 2, gradient: '' };
  });
  const runningStats: StatBinding[] = [];
  for (const s of prepared.batchNorms) {
    for (const [input, output] of [[s.meanInput, s.newMeanOutput], [s.varInput, s.newVarOutput]] as const) {
      const { dims } = initializerToInput(graph, input, 'running statistic');
      runningStats.push({ input, output, dims });
    }
  }

  const built = appendLoss(graph, logits, opts.loss);
  for (const a of aux) {
    const r = appendAuxiliaryLoss(graph, built.loss, a);
    built.loss = r.loss;
    built.inputs.push(r.input);
  }
  if (built.loss.name !== 'loss' && !graph.lookup('loss')) graph.renameValue(built.loss, 'loss');
  const wrt = weights.map((w) => graph.values.get(w.name)!);
  // Mixed precision seeds the backward pass with S instead of 1: every gradient is S·∂loss/∂w, which
  // keeps small float16 gradients from flushing to zero (the trainer divides S out in float32).
  const scale = mixed ? graph.addInput(LOSS_SCALE_INPUT, tensorType(DataType.FLOAT, [])) : undefined;
  const { grads } = differentiate(model, { loss: built.loss, wrt, ...(scale ? { seed: scale } : {}) });

  const statOutputs = runningStats.map((s) => {
    const v = graph.values.get(s.output);
    if (!v) throw new FrugalError('E_INVALID_MODEL', `running statistic output '${s.output}' is missing from the prepared graph`);
    return v;
  });
  let fused: FusedBinding | undefined;
  if (opts.fusedOptimizer) {
    const f = opts.fusedOptimizer;
    graph.outputs = [built.loss, logits, ...statOutputs];
    const params = weights.map((w, i) => ({ weight: wrt[i]!, grad: grads[i]!, dims: w.dims, decay: w.decay }));
    fused = appendOptimizerUpdate(graph, params, f.config, f.clipNorm);
  }
  // Name each gradient output after its weight. A gradient computed by the backward pass for this weight
  // alone is renamed in place; anything else (a value shared by two weights' gradients, or one the graph
  // already has under another role: an input, an output, a forward value) is copied out by an Identity.
  // The renaming matters for speed: an Identity on a graph output is a full copy of the gradient per step.
  const outputsSoFar = new Set<Value>(graph.outputs);
  const gradOutputs = fused ? [] : grads.map((g, i) => {
    const w = weights[i]!;
    w.gradient = graph.uniqueName(`${w.name}.grad`);
    const own = !!g.producer && g.producer.name.startsWith('grad/') && !outputsSoFar.has(g) && grads.indexOf(g) === i && !g.isGraphInput;
    let out: Value;
    if (own) {
      graph.renameValue(g, w.gradient);
      out = g;
    } else {
      out = graph.addNode({ opType: 'Identity', name: graph.uniqueNodeName(`grad_out/${w.name}`), inputs: [g], outputNames: [w.gradient] }).outputs[0]!;
    }
    out.type = tensorType(w.dtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT, w.dims);
    outputsSoFar.add(out);
    return out;
  });
  if (!fused) graph.outputs = [built.loss, logits, ...gradOutputs, ...statOutputs];
  eliminateDeadCode(graph, { keepInitializers: false });
  return {
    model,
    binding: { dataInputs, weights, lossInputs: built.inputs, loss: built.loss.name, logits: logits.name, runningStats, ...(fused ? { fused } : {}), ...(scale ? { lossScale: scale.name } : {}) },
  };
}

/**
 * A clone of the forward model (inference mode) whose initializers `names` are graph inputs, so that
 * one session evaluates the model with the current weights and running statistics each epoch.
 */
export function buildEvalModel(forward: Model, names: readonly string[]): Model {
  const model = cloneModel(forward);
  for (const n of names) initializerToInput(model.graph, n, 'weight');
  return model;
}
