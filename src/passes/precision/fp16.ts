/**
 * float32 → float16 (or bfloat16) conversion of a model's float tensors and ops.
 *
 * Every node of the main graph is either converted (its float inputs and outputs become float16) or
 * kept in float32: ops on the block list (see fp16-ops.ts), excluded nodes, ops outside the default
 * domain, and nodes holding subgraphs (If/Loop/Scan bodies are left as they are, and outer values they
 * read are cast back to float32 for them). Where a value crosses between the two worlds a Cast is
 * inserted (one per value and direction). The model's inputs and outputs keep their float32 types:
 * Casts sit at the boundary. A node reading a constant with finite values beyond ±65504 stays float32
 * (clipping the constant would change its result), except bounds (Min, Max, Clip: FP16_CLIP_EXACT),
 * where clipping is exact. Float initializers read by a converted node are
 * stored in float16 (any value still beyond ±65504, e.g. one shared with another reader, is clipped and
 * counted); initializers read only by float32 nodes stay float32.
 * Finally Casts that do nothing (to the type their input already has, or float16→float32→float16 round
 * trips) are removed.
 *
 * Invariant: a converted value is float16 everywhere it is read, except through an inserted Cast.
 */
import { checkExclusions } from '../exclusions.js';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import { inferShapes } from '../../ir/shape-inference.js';
import { Tensor } from '../../ir/tensor.js';
import { elemTypeOf } from '../../ir/types.js';
import { FrugalError } from '../../errors.js';
import type { Pass, PassResult } from '../pass.js';
import { type Skip, skip, type SkipCode } from '../rules.js';
import { blockedOps, float32Only, FP16_CLIP_EXACT, FP16_CONTRIB_OPS, FP16_MAX } from './fp16-ops.js';
import { isFloat32, retypeToHalf } from './fp16-retype.js';

export interface Fp16Options {
  /** Target type (default float16). */
  to?: 'float16' | 'bfloat16';
  /** Kernel table used to block ops: `cpu` (onnxruntime-node 1.30's CPU provider, default) or `any`. */
  provider?: 'cpu' | 'any';
  /** More op types to keep in float32. */
  blockOps?: readonly string[];
  /** Op types to convert even though the default block list names them. */
  allowOps?: readonly string[];
  /** Node names to keep in float32. */
  excludeNodes?: readonly string[];
}

export interface Fp16Stats {
  [key: string]: unknown;
  to: 'float16' | 'bfloat16';
  convertedNodes: number;
  /** Nodes kept in float32 that touch float tensors, by op type, with the (first such node's) reason and its code. */
  keptFloat32: Record<string, { count: number; reason: string; code: SkipCode }>;
  initializersConverted: number;
  initializersKeptFloat32: number;
  /** Finite constant elements beyond ±65504 clipped to ±65504 (float16 only). */
  clipped: number;
  /** Non-zero constant elements too small for float16 that became zero. */
  underflowed: number;
  castsInserted: number;
  castsRemoved: number;
  /** Converted initializers that were also listed as graph inputs (IR < 4 style), no longer listed. */
  initializerInputsDropped: number;
  bytesBefore: number;
  bytesAfter: number;
}

const F32 = DataType.FLOAT;

/** The float16/bfloat16 conversion pass; see the module comment. */
export function fp16Pass(opts: Fp16Options = {}): Pass {
  const o = resolveOptions(opts);
  return {
    name: o.to === 'float16' ? 'convert-fp16' : 'convert-bf16',
    // A misspelled node name in the exclusions would otherwise silently exclude nothing.
    checkPreconditions: (model) => checkExclusions(model, { excludeNodes: opts.excludeNodes }),
    run: (model) => convert(model, o),
  };
}

/**
 * The pass's conversion applied directly to `model` (modified in place, also returned in the result), for
 * callers building a graph of their own (mixed-precision training) rather than running a pipeline.
 */
export function convertToFloat16(model: Model, opts: Fp16Options = {}): PassResult {
  checkExclusions(model, { excludeNodes: opts.excludeNodes });
  return convert(model, resolveOptions(opts));
}

function resolveOptions(opts: Fp16Options): Fp16Options & { to: 'float16' | 'bfloat16'; provider: 'cpu' | 'any' } {
  const to = opts.to ?? 'float16';
  if (to !== 'float16' && to !== 'bfloat16') throw new FrugalError('E_USAGE', `precision target must be 'float16' or 'bfloat16', got '${String(to)}'`);
  const provider = opts.provider ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'any') throw new FrugalError('E_USAGE', `provider table must be 'cpu' or 'any', got '${String(provider)}'`);
  return { ...opts, to, provider };
}

function initializerBytes(model: Model): number {
  let n = 0;
  for (const g of model.allGraphs()) for (const v of g.initializers()) n += v.initializer!.byteLength;
  return n;
}

function convert(model: Model, o: Fp16Options & { to: 'float16' | 'bfloat16'; provider: 'cpu' | 'any' }): PassResult {
  const block = blockedOps(o.to, o.provider);
  const g = model.graph;
  const stats: Fp16Stats = { to: o.to, convertedNodes: 0, keptFloat32: {}, initializersConverted: 0, initializersKeptFloat32: 0, clipped: 0, underflowed: 0, castsInserted: 0, castsRemoved: 0, initializerInputsDropped: 0, bytesBefore: initializerBytes(model), bytesAfter: 0 };
  inferShapes(model);
  const isFloat = isFloat32;

  // 1. Decide each node.
  const half = new Set<Node>();
  for (const n of g.nodes) {
    const touches = n.inputs.some(isFloat) || n.outputs.some(isFloat) || (n.opType === 'Cast' && n.attrInt('to', 0) === F32);
    if (!touches && n.opType !== 'Constant' && n.opType !== 'ConstantOfShape') continue;
    const why = keepReason(n, o, block);
    if (why === null) continue; // nothing float about it
    if (why) {
      if (touches) {
        const k = (stats.keptFloat32[n.qualifiedOp] ??= { count: 0, reason: why.detail, code: why.code });
        k.count++;
      }
      continue;
    }
    half.add(n);
  }

  // 2.-5. and the Cast cleanup: see fp16-retype.ts.
  retypeToHalf(model, half, o.to, stats);
  stats.bytesAfter = initializerBytes(model);
  return { model, modified: stats.convertedNodes > 0 || stats.castsInserted > 0, stats };
}

/**
 * The pass's per-node check, in the vocabulary of rewrite rules (rules.ts): undefined: convert; a Skip:
 * keep in float32, for this reason; null: the node has nothing float (the rule does not apply).
 */
function keepReason(n: Node, o: Fp16Options, block: ReturnType<typeof blockedOps>): Skip | undefined | null {
  if (n.opType === 'Constant' || n.opType === 'ConstantOfShape') {
    const t = n.attr('value');
    if (n.opType === 'ConstantOfShape' && t === undefined) return undefined; // default value: float32 zero
    if (!(t instanceof Tensor) || t.dtype !== F32) return null;
  }
  if (o.excludeNodes?.includes(n.name)) return skip('excluded', 'excluded by option');
  const halfContrib = o.to === 'float16' && n.domain === 'com.microsoft' && FP16_CONTRIB_OPS.has(n.opType);
  if (n.domain !== '' && n.domain !== 'ai.onnx' && !halfContrib) return skip('blocked', `op of domain '${n.domain}' (only default-domain ops and ${[...FP16_CONTRIB_OPS].join('/')} are converted)`);
  if (n.subgraphs().length) return skip('subgraph', 'holds subgraphs (kept in float32 with their bodies)');
  // blockOps carries the caller's op-type exclusions (`--exclude Conv`).
  if (o.blockOps?.includes(n.opType)) return skip('excluded', 'blocked by option');
  const why = o.allowOps?.includes(n.opType) ? undefined : block.reason(n.opType);
  if (why) return skip('blocked', why);
  if (n.outputs.some((v) => v && elemTypeOf(v.type) === undefined)) return skip('unknown-type', 'an output type is unknown');
  // A value of unknown type (written by an op that shape inference does not know) may well be float32:
  // reading it in a float16 node would bind one type parameter to two types, which ORT refuses.
  if (n.inputs.some((v) => v && (elemTypeOf(v.type) ?? v.initializer?.dtype) === undefined)) return skip('unknown-type', 'an input type is unknown');
  if (o.to === 'float16' && !FP16_CLIP_EXACT.has(n.opType) && n.inputs.some((v, i) => !float32Only(n, i) && beyondHalfRange(v))) {
    // Clipping such a constant to ±65504 changes the op's result, not just its precision (measured:
    // PP-OCRv4 det's BatchNormalization running variance of 1e7..1e8 clipped to 65504 scaled its
    // output ~40×, cosine 0.82 vs float32). Its arithmetic needs float32's range anyway.
    return skip('range', 'a constant input holds values beyond float16\'s range (±65504)');
  }
  return undefined;
}

/** True for a float32 constant (initializer or Constant node output) with a finite element beyond ±65504. */
function beyondHalfRange(v: Value | null | undefined): boolean {
  const p = v?.producer;
  const t = v?.initializer ?? (p && p.opType === 'Constant' && p.domain === '' ? p.attr('value') : undefined);
  if (!(t instanceof Tensor) || t.dtype !== F32) return false;
  const data = t.toArray() as Float32Array;
  for (let i = 0; i < data.length; i++) if (Math.abs(data[i]!) > FP16_MAX && Number.isFinite(data[i]!)) return true;
  return false;
}
