import { byteSizeOf, dataTypeName } from './dtype.js';
import type { Graph } from './graph.js';
import type { Model } from './model.js';
import type { Node, Value } from './node.js';
import { type InferenceOptions, inferShapes } from './shape-inference.js';
import type { Tensor } from './tensor.js';
import { type Shape, shapeOf } from './types.js';

/**
 * A static cost model: FLOPs per node from inferred shapes, and parameter counts from initializers.
 *
 * Conventions: a multiply-add is 2 FLOPs. MatMul/Gemm cost 2·M·N·K (Gemm adds M·N for C); Conv costs
 * 2·N·Cout·∏out_spatial·(Cin/group)·∏kernel (plus N·Cout·∏out_spatial for the bias); ConvTranspose
 * 2·N·Cin·∏in_spatial·(Cout/group)·∏kernel. Elementwise ops cost their output's element count times
 * the per-element constant in `FLOPS_PER_ELEMENT` (1 unless listed). Reductions and pools cost one FLOP
 * per input element read (pools: output elements × window size). Recurrent layers count their gate
 * matrix products. Pure data movement (Reshape, Transpose, Gather, Concat, Slice, Cast...) costs 0.
 * Ops without an entry, or whose shapes are not fully known, have `flops: null`.
 */

/** FLOPs per output element for elementwise and normalization ops (a small constant × numel). */
export const FLOPS_PER_ELEMENT: Readonly<Record<string, number>> = Object.freeze({
  // Binary arithmetic and comparisons.
  Add: 1, Sub: 1, Mul: 1, Div: 1, Pow: 1, Mod: 1, Max: 1, Min: 1, Sum: 1, Mean: 1, PRelu: 1, Where: 1,
  Equal: 1, Less: 1, Greater: 1, LessOrEqual: 1, GreaterOrEqual: 1, And: 1, Or: 1, Xor: 1, Not: 1,
  BitShift: 1, BitwiseAnd: 1, BitwiseOr: 1, BitwiseXor: 1, BitwiseNot: 1,
  // Unary math and activations.
  Abs: 1, Neg: 1, Sqrt: 1, Reciprocal: 1, Exp: 1, Log: 1, Erf: 1, Tanh: 1, Sigmoid: 1, Relu: 1, LeakyRelu: 1,
  Elu: 1, Selu: 1, Celu: 1, Softplus: 1, Softsign: 1, HardSigmoid: 1, HardSwish: 1, Mish: 1, Gelu: 1, Clip: 1,
  Floor: 1, Ceil: 1, Round: 1, Sign: 1, Sin: 1, Cos: 1, Tan: 1, IsNaN: 1, IsInf: 1, ThresholdedRelu: 1,
  Shrink: 1, ImageScaler: 2, CumSum: 1,
  // Composite ops: max, subtract, exp, sum, divide.
  Softmax: 5, LogSoftmax: 5, Hardmax: 2,
  // Normalizations: mean, variance, normalize, scale and shift.
  LayerNormalization: 8, InstanceNormalization: 8, GroupNormalization: 8, MeanVarianceNormalization: 8,
  LpNormalization: 3, LRN: 6,
  // Inference-mode batch norm is a per-channel scale and shift (after folding the statistics).
  BatchNormalization: 2,
  QuantizeLinear: 2, DequantizeLinear: 2, DynamicQuantizeLinear: 4,
  Resize: 1, Upsample: 1,
  'com.microsoft::Gelu': 8, 'com.microsoft::FastGelu': 8, 'com.microsoft::BiasGelu': 9, 'com.microsoft::SkipLayerNormalization': 10,
});

/** Ops that only move or describe data: 0 FLOPs. */
const ZERO_COST = new Set([
  'Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'Concat', 'Split', 'Slice', 'Gather', 'GatherElements', 'GatherND',
  'Shape', 'Size', 'Cast', 'CastLike', 'Constant', 'ConstantOfShape', 'Identity', 'Dropout', 'Expand', 'Tile', 'Pad', 'Range',
  'DepthToSpace', 'SpaceToDepth', 'OneHot', 'NonZero', 'Compress', 'ScatterND', 'ScatterElements', 'Scatter', 'Trilu',
  'EyeLike', 'ReverseSequence',
]);

const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare', 'ArgMax', 'ArgMin', 'TopK', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);

export interface NodeCost {
  node: string;
  opType: string;
  flops: number | null;
  /** Bytes of initializers this node is the first to read (each initializer counted once per model). */
  paramBytes: number;
}

export interface CostReport {
  /** Total FLOPs; null when some node's cost is unknown. */
  flops: number | null;
  /** Fraction of nodes whose FLOPs are known (1 when every cost is known). */
  flopsKnownFraction: number;
  /** FLOPs summed over the nodes whose cost is known. */
  knownFlops: number;
  parameterCount: number;
  parameterBytes: number;
  /** Parameter bytes by element type name (`float32`, `int8`...). */
  bytesByDtype: Record<string, number>;
  perNode: NodeCost[];
  perOpType: Record<string, { count: number; flops: number | null }>;
}

export interface ParameterCount {
  parameterCount: number;
  parameterBytes: number;
  bytesByDtype: Record<string, number>;
}

/** Counts initializer elements and bytes (dense and sparse values) over every graph of the model. */
export function countParameters(model: Model): ParameterCount {
  const out: ParameterCount = { parameterCount: 0, parameterBytes: 0, bytesByDtype: {} };
  for (const g of model.graph.allGraphs()) {
    for (const v of g.values.values()) addParameter(out, v);
  }
  return out;
}

function tensorBytes(t: Tensor): number {
  return t.isString ? t.byteLength : byteSizeOf(t.dtype, t.numel);
}

/** Adds a value's constant data to the count; returns its bytes (0 when not an initializer). */
function addParameter(acc: ParameterCount, v: Value): number {
  const t = v.initializer ?? v.sparseInitializer?.values;
  if (!t) return 0;
  const bytes = tensorBytes(t);
  acc.parameterCount += t.numel;
  acc.parameterBytes += bytes;
  const k = dataTypeName(t.dtype);
  acc.bytesByDtype[k] = (acc.bytesByDtype[k] ?? 0) + bytes;
  return bytes;
}

const numel = (s: Shape | undefined): number | null => {
  if (!s) return null;
  let n = 1;
  for (const d of s) {
    if (typeof d !== 'number') return null;
    n *= d;
  }
  return n;
};

const shape = (v: Value | null | undefined): Shape | undefined => {
  if (!v) return undefined;
  return shapeOf(v.type) ?? (v.initializer ? [...v.initializer.dims] : undefined);
};

/** FLOPs of one node (null when unknown). Subgraph costs come from `graphFlops`. */
export function nodeFlops(node: Node): number | null {
  const op = node.qualifiedOp;
  const out = shape(node.outputs[0]);
  const outN = numel(out);
  if (ZERO_COST.has(op)) return 0;
  switch (op) {
    case 'MatMul':
    case 'MatMulInteger':
    case 'com.microsoft::DynamicQuantizeMatMul':
    case 'com.microsoft::MatMulIntegerToFloat':
      return matmulFlops(shape(node.inputs[0]), outN);
    case 'QLinearMatMul':
      return matmulFlops(shape(node.inputs[0]), outN);
    case 'Gemm':
    case 'com.microsoft::FusedGemm': {
      const a = shape(node.inputs[0]);
      const k = a ? (node.attrInt('transA', 0) ? a[0] : a[1]) : null;
      if (outN === null || typeof k !== 'number') return null;
      return 2 * outN * k + (node.inputs[2] ? outN : 0);
    }
    case 'Conv':
    case 'ConvInteger':
    case 'QLinearConv':
    case 'com.microsoft::FusedConv': {
      const w = shape(node.inputs[op === 'QLinearConv' ? 3 : 1]);
      const kernel = w ? numel(w.slice(1)) : null; // (Cin/group)·∏kernel
      if (outN === null || kernel === null) return null;
      const bias = op === 'QLinearConv' ? node.inputs[8] : op === 'Conv' ? node.inputs[2] : null;
      return 2 * outN * kernel + (bias ? outN : 0);
    }
    case 'ConvTranspose': {
      const x = numel(shape(node.inputs[0]));
      const w = shape(node.inputs[1]);
      const perInput = w ? numel(w.slice(1)) : null; // (Cout/group)·∏kernel
      if (x === null || perInput === null) return null;
      return 2 * x * perInput + (node.inputs[2] && outN !== null ? outN : 0);
    }
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool': {
      const k = node.attrInts('kernel_shape');
      return outN === null || !k ? null : outN * k.reduce((a, b) => a * b, 1);
    }
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      return recurrentFlops(node, op === 'LSTM' ? 4 : op === 'GRU' ? 3 : 1);
    case 'Einsum':
      return null;
    case 'com.microsoft::Attention': {
      const x = shape(node.inputs[0]);
      const w = shape(node.inputs[1]);
      const tokens = x ? numel(x.slice(0, -1)) : null;
      const seq = x?.[1];
      const wn = numel(w);
      if (tokens === null || wn === null || typeof seq !== 'number' || !w) return null;
      const hidden = (w[1] as number) / 3;
      // QKV projection plus the two attention products (QKᵀ and AV).
      return 2 * tokens * wn + 4 * tokens * seq * hidden;
    }
  }
  if (REDUCE.has(op)) return numel(shape(node.inputs[0]));
  const per = FLOPS_PER_ELEMENT[op];
  if (per !== undefined) return outN === null ? null : per * outN;
  return null;
}

function matmulFlops(a: Shape | undefined, outN: number | null): number | null {
  const k = a?.[a.length - 1];
  return outN === null || typeof k !== 'number' ? null : 2 * outN * k;
}

function recurrentFlops(node: Node, gates: number): number | null {
  const x = shape(node.inputs[0]);
  const w = shape(node.inputs[1]);
  const y = shape(node.outputs[1]) ?? shape(node.outputs[0]);
  if (!x || !w || !y) return null;
  const layout = node.attrInt('layout', 0);
  const [seq, batch, input] = layout === 0 ? [x[0], x[1], x[2]] : [x[1], x[0], x[2]];
  const dirs = w[0];
  const hidden = node.attrInt('hidden_size') ?? y[y.length - 1];
  if (![seq, batch, input, dirs, hidden].every((d) => typeof d === 'number')) return null;
  const [s, b, i, d, h] = [seq, batch, input, dirs, hidden] as number[];
  // Per step and direction: gates·h outputs, each a dot product over input and hidden state.
  return 2 * s * d * b * gates * h * (i + h) + s * d * b * gates * h;
}

/** FLOPs of a whole graph, including control-flow bodies (Loop/Scan × iterations, If: larger branch). */
function graphFlops(g: Graph, visit: (n: Node, f: number | null) => void): number | null {
  let total: number | null = 0;
  for (const n of g.nodes) {
    const f = controlFlowFlops(n) ?? nodeFlops(n);
    visit(n, f);
    total = total === null || f === null ? null : total + f;
  }
  return total;
}

function controlFlowFlops(n: Node): number | null | undefined {
  const sub = (name: string): number | null => {
    const g = n.attr(name);
    return g && typeof g === 'object' && 'nodes' in g ? graphFlops(g as Graph, () => {}) : null;
  };
  if (n.opType === 'If') {
    const a = sub('then_branch');
    const b = sub('else_branch');
    return a === null || b === null ? null : Math.max(a, b);
  }
  if (n.opType === 'Scan') {
    const body = sub('body');
    const m = n.attrInt('num_scan_inputs', 0);
    const xs = shape(n.inputs[n.inputs.length - m]);
    const axis = n.attrInts('scan_input_axes')?.[0] ?? 0;
    const seq = xs?.[axis < 0 ? axis + xs.length : axis];
    return body === null || typeof seq !== 'number' ? null : body * seq;
  }
  if (n.opType === 'Loop') return null; // trip count is data-dependent in general
  return undefined;
}

/**
 * Estimates FLOPs and parameter sizes. Run `inferShapes` first (or pass `infer`) so that node output
 * shapes are known; nodes with unknown shapes get `flops: null` and make the total null.
 */
export function estimateCost(model: Model, opts: { infer?: boolean | InferenceOptions } = {}): CostReport {
  if (opts.infer) inferShapes(model, opts.infer === true ? {} : opts.infer);
  const params: ParameterCount = { parameterCount: 0, parameterBytes: 0, bytesByDtype: {} };
  const seen = new Set<Value>();
  const perNode: NodeCost[] = [];
  const perOpType: CostReport['perOpType'] = {};
  let known = 0;
  let knownFlops = 0;
  const total = graphFlops(model.graph, (n, flops) => {
    let paramBytes = 0;
    // Initializers read by the node or by its subgraphs, each counted at its first reader.
    const reads = [...n.inputs, ...[...n.subgraphs()].flatMap((g) => [...g.allNodes()].flatMap((x) => [...x.inputs]))];
    for (const v of reads) {
      if (!v || seen.has(v) || !(v.initializer || v.sparseInitializer)) continue;
      seen.add(v);
      paramBytes += addParameter(params, v);
    }
    for (const g of n.subgraphs()) for (const sg of g.allGraphs()) for (const v of sg.values.values()) {
      if (seen.has(v) || !(v.initializer || v.sparseInitializer)) continue;
      seen.add(v);
      paramBytes += addParameter(params, v);
    }
    const op = n.qualifiedOp;
    perNode.push({ node: n.name || `${op}#${perNode.length}`, opType: op, flops, paramBytes });
    const e = (perOpType[op] ??= { count: 0, flops: 0 });
    e.count++;
    e.flops = e.flops === null || flops === null ? null : e.flops + flops;
    if (flops !== null) {
      known++;
      knownFlops += flops;
    }
  });
  // Initializers no node reads (dead weights) still count as parameters of the model.
  for (const v of model.graph.values.values()) {
    if (seen.has(v) || !(v.initializer || v.sparseInitializer)) continue;
    seen.add(v);
    addParameter(params, v);
  }
  return {
    flops: total,
    flopsKnownFraction: perNode.length ? known / perNode.length : 1,
    knownFlops,
    ...params,
    perNode,
    perOpType,
  };
}
