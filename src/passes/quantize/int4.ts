/**
 * int4 weight-only quantization. Activations stay float; constant weights are stored as 4-bit codes with
 * one float scale (and, asymmetric, one 4-bit zero point) per block of `blockSize` elements along the
 * reduction axis, and dequantized inside the op:
 *
 * - `MatMul(A, B)` with a constant 2-D B [K, N], and `Gemm` (transA = 0) with a constant B, become
 *   com.microsoft `MatMulNBits` (bits 4). Gemm's alpha is folded into the scales, beta·C into the op's
 *   bias input. K need not be a multiple of the block size: the last block is padded with zero codes.
 * - `Gather(data, indices)` on axis 0 of a constant 2-D table (embeddings) becomes com.microsoft
 *   `GatherBlockQuantized` with int4 (symmetric) or uint4 + zero points (asymmetric) data.
 * - `format: 'qdq'` instead inserts ONNX `DequantizeLinear` (block_size, opset 21) on the weight and keeps
 *   the original op; the model's opset is raised to 21 when every op it uses means the same there.
 *
 * Outputs of the rewritten ops are float, so no 4-bit tensor ever leaves the graph (onnxruntime-node
 * 1.30 aborts the process when asked to return one).
 */
import { checkExclusions, exclusionSkip } from '../exclusions.js';
import { applyRules, type AnyRewriteRule, countByCode, type RewriteRule, Skip, skip, type SkipCode } from '../rules.js';
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import type { Node, NodeInit, Value } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import { float32ToFloat16Bits, packInt4 } from '../../onnx/packing.js';
import { elemTypeOf } from '../../ir/types.js';
import type { Pass, PassResult } from '../pass.js';
import { type BlockQuantized, codeAt, packMatMulNBitsZeroPoints, quantizeBlockwise } from './int4-blockwise.js';
import { raiseOpsetTo21 } from './int4-opset.js';
import { dropUnusedInitializers, replaceNode } from '../../ir/rewrite.js';

export interface Int4Options {
  /** Elements per block along the reduction axis: a power of two from 16 to 256 (default 32). */
  blockSize?: number;
  /** Symmetric blocks (zero point 8 implied, default) or asymmetric with packed uint4 zero points. */
  symmetric?: boolean;
  /** `matmulnbits` (default: com.microsoft MatMulNBits / GatherBlockQuantized) or `qdq` (DequantizeLinear, opset 21). */
  format?: 'matmulnbits' | 'qdq';
  /** Quantize constant embedding tables read by Gather (default true). */
  embeddings?: boolean;
  /**
   * Scale type of quantized embedding tables (default float16: GatherBlockQuantized then yields float16,
   * cast back to float32; it saves 2 bytes per block, which on a BERT-base-sized model is the difference
   * between 0.160× and 0.157× of the fp32 file).
   */
  embeddingScales?: 'float16' | 'float32';
  /** MatMulNBits `accuracy_level` (0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8; default 0). */
  accuracyLevel?: number;
  /** Node names to leave alone. */
  excludeNodes?: readonly string[];
  /** Op types to leave alone (`Gather`, `Gemm`, `MatMul`). */
  excludeOpTypes?: readonly string[];
  /** Weights with fewer elements are left in float: the op and scales cost more than they save (default 1024). */
  minElements?: number;
}

/** A node the pass did not quantize, and why. */
export interface SkippedNode {
  node: string;
  opType: string;
  reason: string;
  /** The reason as a stable code (see rules.ts). */
  code: SkipCode;
}

export interface Int4Stats {
  [key: string]: unknown;
  format: 'matmulnbits' | 'qdq';
  blockSize: number;
  symmetric: boolean;
  /** Nodes rewritten, by original op type. */
  quantized: Record<string, number>;
  /** Rewritten weights whose reduction length was padded to a whole block. */
  padded: number;
  skipped: SkippedNode[];
  /** Skipped nodes by code. */
  skippedByCode: Partial<Record<SkipCode, number>>;
  /** Initializer bytes of the whole model before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** Set when the qdq format raised the model's opset. */
  opsetRaisedFrom?: number;
}

const MS = 'com.microsoft';

/** The int4 weight-only pass; see the module comment. */
export function int4WeightOnlyPass(opts: Int4Options = {}): Pass {
  const blockSize = opts.blockSize ?? 32;
  const format = opts.format ?? 'matmulnbits';
  if (!(Number.isInteger(blockSize) && blockSize >= 16 && blockSize <= 256 && (blockSize & (blockSize - 1)) === 0)) {
    throw new FrugalError('E_USAGE', `blockSize must be a power of two from 16 to 256 (int4 blocks), got ${blockSize}`, { option: 'blockSize' });
  }
  if (format !== 'matmulnbits' && format !== 'qdq') throw new FrugalError('E_USAGE', `int4 format must be 'matmulnbits' or 'qdq', got '${String(format)}'`);
  const accuracyLevel = opts.accuracyLevel ?? 0;
  if (!(Number.isInteger(accuracyLevel) && accuracyLevel >= 0 && accuracyLevel <= 4)) throw new FrugalError('E_USAGE', `accuracy_level must be an integer 0..4, got ${accuracyLevel}`);
  return {
    name: 'quantize-int4',
    // A misspelled node name in the exclusions would otherwise silently exclude nothing.
    checkPreconditions: (model) => checkExclusions(model, opts),
    run: (model) => runInt4(model, { ...opts, blockSize, format, accuracyLevel }),
  };
}

type Resolved = Int4Options & { blockSize: number; format: 'matmulnbits' | 'qdq'; accuracyLevel: number };

function initializerBytes(model: Model): number {
  let n = 0;
  for (const g of model.allGraphs()) for (const v of g.initializers()) n += v.initializer!.byteLength;
  return n;
}

function runInt4(model: Model, o: Resolved): PassResult {
  const symmetric = o.symmetric ?? true;
  const minElements = o.minElements ?? 1024;
  const stats: Int4Stats = { format: o.format, blockSize: o.blockSize, symmetric, quantized: {}, padded: 0, skipped: [], skippedByCode: {}, bytesBefore: initializerBytes(model), bytesAfter: 0 };
  const report = {
    done: (n: Node): void => void (stats.quantized[n.opType] = (stats.quantized[n.opType] ?? 0) + 1),
    skip: (n: Node, reason: string, code: SkipCode): void => void stats.skipped.push({ node: n.name, opType: n.opType, reason, code }),
  };

  if (o.format === 'qdq' && model.opset < 21) {
    const problem = raiseOpsetTo21(model, true);
    if (problem) {
      for (const n of model.graph.allNodes()) if (isCandidate(n)) report.skip(n, `the qdq form needs opset 21 and ${problem}; use format 'matmulnbits'`, 'opset');
      stats.skippedByCode = countByCode(stats.skipped);
      stats.bytesAfter = stats.bytesBefore;
      return { model, modified: false, stats };
    }
  }

  // One quantized copy per (weight, layout): weights shared by several nodes are stored once.
  const cache = new Map<string, Value[]>();
  const ctx: Ctx = { o, symmetric, minElements, cache, stats, replaced: new Set() };
  const rules = o.format === 'qdq' ? QDQ_RULES : NBITS_RULES;
  for (const g of [...model.allGraphs()]) applyRules(g, rules, ctx, { exclude: (n) => exclusionSkip(n, o), report });
  const modified = Object.keys(stats.quantized).length > 0;
  if (modified && o.format === 'matmulnbits' && !model.opsetImports.has(MS)) model.opsetImports.set(MS, 1);
  // 4-bit tensor element types exist from IR version 10 on.
  if ((stats.quantized['Gather'] || o.format === 'qdq') && modified && model.irVersion < 10) model.irVersion = 10;
  if (modified && o.format === 'qdq' && model.opset < 21) {
    stats.opsetRaisedFrom = model.opset;
    raiseOpsetTo21(model, false);
  }
  stats.skippedByCode = countByCode(stats.skipped);
  // Weights no longer read by anything leave the model.
  dropUnusedInitializers(ctx.replaced);
  stats.bytesAfter = initializerBytes(model);
  return { model, modified, stats };
}

interface Ctx {
  o: Resolved;
  symmetric: boolean;
  minElements: number;
  cache: Map<string, Value[]>;
  stats: Int4Stats;
  /** Float weights replaced by quantized copies. */
  replaced: Set<Value>;
}

function isCandidate(n: Node): boolean {
  return n.domain === '' && (n.opType === 'MatMul' || n.opType === 'Gemm' || n.opType === 'Gather');
}

function weightOf(n: Node): Value | null | undefined {
  return n.opType === 'Gather' ? n.inputs[0] : n.inputs[1];
}

/** The node's constant 2-D float32 weight, or why it has none worth quantizing. */
function checkWeight(n: Node, ctx: Ctx): Value | Skip {
  const { blockSize, embeddings } = ctx.o;
  if (n.opType === 'Gather' && embeddings === false) return skip('disabled', 'embeddings disabled by option');
  const w = weightOf(n);
  if (!w?.initializer) return skip('not-constant', `${n.opType === 'Gather' ? 'data' : 'B'} is not a constant initializer`);
  if (w.isGraphInput) return skip('not-constant', `weight '${w.name}' is also a graph input (the caller may override it)`);
  const t = w.initializer;
  if (t.dtype !== DataType.FLOAT) return skip('not-float', `weight '${w.name}' is ${DataType.FLOAT16 === t.dtype ? 'float16' : `type ${t.dtype}`}, only float32 weights are quantized`);
  if (t.dims.length !== 2) return skip('shape', `weight '${w.name}' has rank ${t.dims.length}, not 2`);
  if (t.numel < ctx.minElements) return skip('small-weight', `weight '${w.name}' has ${t.numel} elements (< minElements ${ctx.minElements}): not worth quantizing`);
  if (n.opType === 'Gather') {
    if (n.attrInt('axis', 0) !== 0) return skip('shape', 'Gather axis is not 0');
    if (t.dims[1]! % blockSize !== 0) return skip('shape', `embedding width ${t.dims[1]} is not a multiple of block size ${blockSize} (GatherBlockQuantized does not pad)`);
    return w;
  }
  if (n.opType === 'Gemm') {
    if (n.attrInt('transA', 0) !== 0) return skip('shape', 'Gemm with transA = 1 is not rewritten');
  }
  const K = n.opType === 'Gemm' && n.attrInt('transB', 0) ? t.dims[1]! : t.dims[0]!;
  if (K < 16) return skip('shape', `K = ${K} is smaller than the smallest block (16)`);
  return w;
}

/** What the MatMulNBits rule found: the weight and its layout, and Gemm's bias C when there is one. */
interface NBitsMatch {
  w: Value;
  K: number;
  N: number;
  transB: boolean;
  c: Value | undefined;
}

/** MatMul/Gemm with a constant B → com.microsoft MatMulNBits. */
const nbitsRule: RewriteRule<Ctx, NBitsMatch> = {
  ops: ['MatMul', 'Gemm'],
  check(n, ctx) {
    const w = checkWeight(n, ctx);
    if (w instanceof Skip) return w;
    const aType = elemTypeOf(n.inputs[0]!.type);
    if (aType !== undefined && aType !== DataType.FLOAT) return skip('not-float', `input A is not float32 (MatMulNBits scales must match A's type)`);
    const t = w.initializer!;
    const transB = n.opType === 'Gemm' && n.attrInt('transB', 0) !== 0;
    const [K, N] = transB ? [t.dims[1]!, t.dims[0]!] : [t.dims[0]!, t.dims[1]!];
    const c = n.opType === 'Gemm' ? n.inputs[2] ?? undefined : undefined;
    if (c && (!c.initializer || c.initializer.dtype !== DataType.FLOAT || c.initializer.numel !== N || (c.initializer.dims.length === 2 && c.initializer.dims[0] !== 1))) {
      return skip('not-constant', 'Gemm C is not a constant float32 bias of N elements');
    }
    return { w, K, N, transB, c };
  },
  rewrite(n, m, ctx) {
    rewriteMatMul(n.graph!, n, m, ctx);
    return 'MatMulNBits';
  },
};

/** Gather on axis 0 of a constant table → com.microsoft GatherBlockQuantized. */
const gatherRule: RewriteRule<Ctx, Value> = {
  ops: ['Gather'],
  check: checkWeight,
  rewrite(n, w, ctx) {
    rewriteGather(n.graph!, n, w, ctx);
    return 'GatherBlockQuantized';
  },
};

/** The QDQ form: any of the three ops keeps its op and reads DequantizeLinear(int4 weight). */
const qdqRule: RewriteRule<Ctx, Value> = {
  ops: ['MatMul', 'Gemm', 'Gather'],
  check: checkWeight,
  rewrite(n, w, ctx) {
    rewriteQdq(n.graph!, n, w, ctx);
    return 'DequantizeLinear';
  },
};

const NBITS_RULES: ReadonlyArray<AnyRewriteRule<Ctx>> = Object.freeze([nbitsRule, gatherRule]);
const QDQ_RULES: ReadonlyArray<AnyRewriteRule<Ctx>> = Object.freeze([qdqRule]);

/** Adds an initializer next to the weight it replaces (so subgraphs see it), marked for cleanup. */
function addConst(w: Value, suffix: string, t: Tensor): Value {
  return w.graph.addInitializer(`${w.name}_${suffix}`, t);
}

/** Records a float weight that a quantized copy replaced: dropped at the end if nothing reads it any more. */
function markSource(ctx: Ctx, w: Value): void {
  ctx.replaced.add(w);
}

function rewriteMatMul(g: Graph, n: Node, { w, K, N, transB, c }: NBitsMatch, ctx: Ctx): void {
  const { o, symmetric } = ctx;
  const a = n.inputs[0]!;
  const t = w.initializer!;
  let bias: Value | null = null;
  const alpha = n.opType === 'Gemm' ? n.attrFloat('alpha', 1) : 1;
  if (c) {
    const beta = n.attrFloat('beta', 1);
    const cv = c.initializer!.toArray() as Float32Array;
    bias = addConst(c, 'bias', Tensor.fromArray(DataType.FLOAT, [N], beta === 1 ? new Float32Array(cv) : cv.map((x) => x * beta)));
    markSource(ctx, c);
  }
  const key = `nbits:${w.name}:${transB ? 't' : 'n'}:${alpha}`;
  let vals = ctx.cache.get(key);
  if (!vals) {
    const src = t.toArray() as Float32Array;
    const q = transB ? quantizeBlockwise(src, N, K, K, 1, o.blockSize, symmetric) : quantizeBlockwise(src, N, K, 1, N, o.blockSize, symmetric);
    if (alpha !== 1) for (let i = 0; i < q.scales.length; i++) q.scales[i] = Math.fround(q.scales[i]! * alpha);
    vals = matMulNBitsInitializers(w, q);
    ctx.cache.set(key, vals);
    if (K % o.blockSize) ctx.stats.padded++;
  }
  markSource(ctx, w);
  const inputs: Array<Value | null> = [a, ...vals];
  if (inputs.length === 3 && bias) inputs.push(null);
  if (bias) inputs.push(null, bias);
  replaceNode(g, n, [{
    opType: 'MatMulNBits',
    name: n.name,
    domain: MS,
    inputs,
    attributes: { K, N, bits: 4, block_size: o.blockSize, ...(o.accuracyLevel ? { accuracy_level: o.accuracyLevel } : {}) },
  }]);
}

/** B, scales and (asymmetric) zero points of MatMulNBits as initializers. */
function matMulNBitsInitializers(w: Value, q: BlockQuantized): Value[] {
  const N = q.rows;
  const out = [
    addConst(w, 'q4', Tensor.fromBytes(DataType.UINT8, [N, q.kBlocks, q.blockSize / 2], q.packed)),
    addConst(w, 'scales', Tensor.fromArray(DataType.FLOAT, [N, q.kBlocks], q.scales)),
  ];
  if (!q.symmetric) out.push(addConst(w, 'zero_points', Tensor.fromBytes(DataType.UINT8, [N, Math.ceil(q.kBlocks / 2)], packMatMulNBitsZeroPoints(q))));
  return out;
}

function rewriteGather(g: Graph, n: Node, w: Value, ctx: Ctx): void {
  const { o, symmetric } = ctx;
  const t = w.initializer!;
  const [V, D] = [t.dims[0]!, t.dims[1]!];
  const half = (o.embeddingScales ?? 'float16') === 'float16';
  const key = `gbq:${w.name}:${half}`;
  let vals = ctx.cache.get(key);
  if (!vals) {
    const q = quantizeBlockwise(t.toArray() as Float32Array, V, D, D, 1, o.blockSize, symmetric);
    // D is a multiple of the block size, so the padded code layout is the tensor's row-major order.
    // Symmetric data is int4 with zero point 0 (the op's default): the signed code is code - 8, whose
    // two's-complement nibble is code ^ 8. Asymmetric data is uint4 with a uint4 zero-point tensor,
    // packed across rows like any ONNX 4-bit tensor.
    const data = q.packed;
    if (symmetric) for (let i = 0; i < data.length; i++) data[i] ^= 0x88;
    // float16 scales: a scale is at most max|w| / 7.5, so it overflows only for weights beyond 4.9e5.
    const scales = half
      ? Tensor.fromArray(DataType.FLOAT16, [V, q.kBlocks], float32ToFloat16Bits(q.scales.map((s) => Math.max(-65504, Math.min(65504, s)))))
      : Tensor.fromArray(DataType.FLOAT, [V, q.kBlocks], q.scales);
    vals = [addConst(w, 'q4', Tensor.fromBytes(symmetric ? DataType.INT4 : DataType.UINT4, [V, D], data)), addConst(w, 'scales', scales)];
    if (!symmetric) vals.push(addConst(w, 'zero_points', Tensor.fromBytes(DataType.UINT4, [V, q.kBlocks], packInt4(q.zeroPoints))));
    ctx.cache.set(key, vals);
  }
  markSource(ctx, w);
  const init: NodeInit = {
    opType: 'GatherBlockQuantized',
    domain: MS,
    inputs: [vals[0]!, n.inputs[1]!, ...vals.slice(1)],
    attributes: { gather_axis: 0, quantize_axis: 1, block_size: o.blockSize, bits: 4 },
  };
  if (!half) {
    replaceNode(g, n, [{ ...init, name: n.name }]);
    return;
  }
  // The op's output has the scales' type: gather in float16, then Cast to the float32 the graph expects.
  const y = n.outputs[0]!;
  const gathered = g.addNode({ ...init, name: g.uniqueNodeName(`${n.name || 'Gather'}_q4`), outputNames: [`${y.name}_f16`] }, { before: n });
  replaceNode(g, n, [{ opType: 'Cast', name: n.name, inputs: [gathered.outputs[0]!], attributes: { to: DataType.FLOAT } }]);
}

/** QDQ form: DequantizeLinear(int4 weight, scales[, zero points], axis, block_size) feeds the original op. */
function rewriteQdq(g: Graph, n: Node, w: Value, ctx: Ctx): void {
  const { o, symmetric } = ctx;
  const t = w.initializer!;
  const [R, C] = [t.dims[0]!, t.dims[1]!];
  // The axis blocks run along: K for MatMul/Gemm (axis 1 when Gemm stores B transposed), D for Gather.
  const axis = n.opType === 'Gather' || (n.opType === 'Gemm' && n.attrInt('transB', 0) !== 0) ? 1 : 0;
  const key = `qdq:${w.name}:${axis}`;
  let dq = ctx.cache.get(key)?.[0];
  if (!dq) {
    const src = t.toArray() as Float32Array;
    // Vectors run along `axis`; the other axis indexes them.
    const q = axis === 0 ? quantizeBlockwise(src, C, R, 1, C, o.blockSize, symmetric) : quantizeBlockwise(src, R, C, C, 1, o.blockSize, symmetric);
    const len = axis === 0 ? R : C;
    // Codes in the weight's own row-major order; symmetric data is int4 (code − 8, i.e. the nibble ^ 8).
    const codes = new Uint8Array(R * C);
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < C; c++) {
        const code = axis === 0 ? codeAt(q, c, r) : codeAt(q, r, c);
        codes[r * C + c] = symmetric ? code ^ 8 : code;
      }
    }
    const dtype = symmetric ? DataType.INT4 : DataType.UINT4;
    const data = packInt4(codes);
    // Scales (and zero points) have the weight's shape with the blocked axis shrunk to kBlocks.
    const sDims = axis === 0 ? [q.kBlocks, C] : [R, q.kBlocks];
    const sIndex = (i: number): number => (axis === 0 ? (i % C) * q.kBlocks + Math.floor(i / C) : i);
    const scales = new Float32Array(q.scales.length).map((_, i) => q.scales[sIndex(i)]!);
    const inputs = [addConst(w, 'q4', Tensor.fromBytes(dtype, [R, C], data)), addConst(w, 'scales', Tensor.fromArray(DataType.FLOAT, sDims, scales))];
    if (!symmetric) inputs.push(addConst(w, 'zero_points', Tensor.fromBytes(dtype, sDims, packInt4(Uint8Array.from({ length: scales.length }, (_, i) => q.zeroPoints[sIndex(i)]!)))));
    if (len % o.blockSize) ctx.stats.padded++;
    const node = w.graph.addNode({ opType: 'DequantizeLinear', name: w.graph.uniqueNodeName(`${w.name}_DequantizeLinear`), inputs, attributes: { axis, block_size: o.blockSize }, outputNames: [`${w.name}_dq`] }, firstNodeOf(w.graph));
    dq = node.outputs[0]!;
    ctx.cache.set(key, [dq]);
  }
  markSource(ctx, w);
  n.setInput(n.opType === 'Gather' ? 0 : 1, dq);
}

/** Where to put a node that only reads initializers: first in its graph, before any reader. */
function firstNodeOf(g: Graph): { before?: Node } {
  return g.nodes[0] ? { before: g.nodes[0] } : {};
}
