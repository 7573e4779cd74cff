/**
 * The weights pruning may touch, and how to read and write them. A *prunable weight* is a float32
 * constant initializer read as the weight operand of a MatMul (B, rank 2), Gemm (B) or Conv (W).
 * Embedding tables (Gather data) count only when asked (`embeddings`); normalization parameters and
 * biases never do: they are small, and zeroing them changes every output rather than removing work.
 *
 * Each weight is described as `outer × reduce × inner` elements in row-major order, where `reduce` is
 * the reduction (input-feature) axis of the product it feeds: element (o, r, i) sits at
 * `(o·reduce + r)·inner + i`. N:M groups run along that axis.
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';

export interface PrunableWeight {
  /** The initializer's value (its name is the weight's name). */
  value: Value;
  /** The node(s) that read it as a weight (more than one for shared weights). */
  nodes: Node[];
  dims: number[];
  outer: number;
  reduce: number;
  inner: number;
}

/** A weight that looks prunable but is not, and why (reported in pass stats). */
export interface SkippedWeight {
  node: string;
  tensor: string;
  reason: string;
}

/** Layout of a node's weight operand, or a reason it has none that pruning can use. */
function weightLayout(node: Node): { input: number; outer: number; reduce: number; inner: number } | string {
  const w = node.inputs[1];
  if (!w) return 'no weight input';
  const dims = w.initializer?.dims ?? [];
  if (node.opType === 'MatMul') {
    if (dims.length !== 2) return `MatMul weight is rank ${dims.length}, not 2`;
    return { input: 1, outer: 1, reduce: dims[0]!, inner: dims[1]! };
  }
  if (node.opType === 'Gemm') {
    if (dims.length !== 2) return `Gemm weight is rank ${dims.length}`;
    return node.attrInt('transB', 0) ? { input: 1, outer: dims[0]!, reduce: dims[1]!, inner: 1 } : { input: 1, outer: 1, reduce: dims[0]!, inner: dims[1]! };
  }
  // Conv W is [Cout, Cin/group, k...]: reduce over input channels at each kernel position.
  if (dims.length < 3) return `Conv weight is rank ${dims.length}`;
  return { input: 1, outer: dims[0]!, reduce: dims[1]!, inner: dims.slice(2).reduce((a, b) => a * b, 1) };
}

const WEIGHT_OPS = new Set(['MatMul', 'Gemm', 'Conv']);

/**
 * The prunable weights of the main graph, in node order (a shared weight once), plus the weight-like
 * inputs that were skipped and why (not a constant, not float32, wrong rank).
 */
export function findPrunableWeights(model: Model, opts: { embeddings?: boolean } = {}): { weights: PrunableWeight[]; skipped: SkippedWeight[] } {
  const byValue = new Map<Value, PrunableWeight>();
  const skipped: SkippedWeight[] = [];
  for (const node of model.graph.nodes) {
    // Embedding tables only when asked: rows are tokens, the reduction-like axis is the embedding width.
    if (opts.embeddings && node.opType === 'Gather' && node.domain === '' && node.attrInt('axis', 0) === 0) {
      const t = node.inputs[0]?.initializer;
      if (t && t.dtype === DataType.FLOAT && t.dims.length === 2 && !byValue.has(node.inputs[0]!)) {
        byValue.set(node.inputs[0]!, { value: node.inputs[0]!, nodes: [node], dims: [...t.dims], outer: t.dims[0]!, reduce: t.dims[1]!, inner: 1 });
      }
      continue;
    }
    if (node.domain !== '' || !WEIGHT_OPS.has(node.opType)) continue;
    const w = node.inputs[1];
    if (!w) continue;
    const name = node.name || node.opType;
    if (!w.initializer) {
      // A MatMul of two activations (attention scores) has no weight; only report real weight slots.
      if (node.opType !== 'MatMul' || w.sparseInitializer) skipped.push({ node: name, tensor: w.name, reason: w.sparseInitializer ? 'sparse initializer' : 'weight is not a constant initializer' });
      continue;
    }
    if (w.initializer.dtype !== DataType.FLOAT) {
      skipped.push({ node: name, tensor: w.name, reason: `weight is ${w.initializer.dtype === DataType.FLOAT16 ? 'float16' : `dtype ${w.initializer.dtype}`}, not float32` });
      continue;
    }
    if (node.opType === 'Gemm' && node.attrInt('transA', 0)) {
      skipped.push({ node: name, tensor: w.name, reason: 'Gemm with transA' });
      continue;
    }
    const layout = weightLayout(node);
    if (typeof layout === 'string') {
      skipped.push({ node: name, tensor: w.name, reason: layout });
      continue;
    }
    const seen = byValue.get(w);
    if (seen) {
      seen.nodes.push(node);
      continue;
    }
    byValue.set(w, { value: w, nodes: [node], dims: [...w.initializer.dims], outer: layout.outer, reduce: layout.reduce, inner: layout.inner });
  }
  return { weights: [...byValue.values()], skipped };
}

/** The float32 data of an initializer (a view when aligned; do not write through it). */
export function readFloats(v: Value): Float32Array {
  const t = v.initializer;
  if (!t || t.dtype !== DataType.FLOAT) throw new FrugalError('E_UNSUPPORTED', `'${v.name}' is not a float32 initializer`);
  return t.toArray() as Float32Array;
}

/** Replaces an initializer's data with `data` (new dims allowed), keeping its name and declared type. */
export function writeFloats(v: Value, data: Float32Array, dims: readonly number[] = v.initializer!.dims): void {
  v.initializer = Tensor.fromArray(DataType.FLOAT, dims, data, v.name);
  if (v.type?.kind === 'tensor') v.type = { ...v.type, shape: [...dims] };
}

/** Number of exact zeros in `a`. */
export function countZeros(a: Float32Array): number {
  let z = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === 0) z++;
  return z;
}
