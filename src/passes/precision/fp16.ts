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
 * Two phases. Phase 1 is a rewrite rule (rules.ts) applied like int8's and int4's: `fp16Rule` claims
 * every op (ANY_OP); its `check` is the per-node decision (a match: this node computes in float16; a
 * typed Skip: it stays float32, and why: 'blocked', 'excluded', 'subgraph', 'unknown-type', 'range'),
 * reported through `applyRules` into `keptFloat32`, `skippedByCode` and `convertedNodes`. Its `rewrite`
 * only records the node and the values it writes that become float16. Phase 2 (fp16-retype.ts) is the
 * edit, and it cannot be per-node: each decision reads the float32 graph as it was (its inputs' types,
 * a producer Constant's values), so nothing may be retyped until every node is decided; and a value's
 * fate is not one node's: an initializer becomes float16 if any converted node reads it, and a Cast goes
 * on each edge whose producer and reader were decided differently (one per value and direction).
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
import { ANY_OP, applyRules, type AnyRewriteRule, type RewriteRule, type RuleReport, type Skip, skip, type SkipCode } from '../rules.js';
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
  /** The same nodes by code. */
  skippedByCode: Partial<Record<SkipCode, number>>;
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

function resolveOptions(opts: Fp16Options): Resolved {
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

type Resolved = Fp16Options & { to: 'float16' | 'bfloat16'; provider: 'cpu' | 'any' };

interface Ctx {
  o: Resolved;
  block: ReturnType<typeof blockedOps>;
  /** Nodes decided to compute in float16, and the values they write that become float16. */
  half: Set<Node>;
  halfValues: Set<Value>;
}

function convert(model: Model, o: Resolved): PassResult {
  const stats: Fp16Stats = { to: o.to, convertedNodes: 0, keptFloat32: {}, skippedByCode: {}, initializersConverted: 0, initializersKeptFloat32: 0, clipped: 0, underflowed: 0, castsInserted: 0, castsRemoved: 0, initializerInputsDropped: 0, bytesBefore: initializerBytes(model), bytesAfter: 0 };
  inferShapes(model);
  // Phase 1: decide each node of the main graph (the rule reads the graph as it was: nothing is retyped yet).
  const ctx: Ctx = { o, block: blockedOps(o.to, o.provider), half: new Set(), halfValues: new Set() };
  const report: RuleReport = {
    done: () => void stats.convertedNodes++,
    skip: (n, reason, code) => {
      const k = (stats.keptFloat32[n.qualifiedOp] ??= { count: 0, reason, code });
      k.count++;
      stats.skippedByCode[code] = (stats.skippedByCode[code] ?? 0) + 1;
    },
  };
  applyRules(model.graph, FP16_RULES, ctx, { report });
  // Phase 2: the edit, which needs every decision (see the module comment).
  retypeToHalf(model, ctx.half, ctx.halfValues, o.to, stats);
  stats.bytesAfter = initializerBytes(model);
  return { model, modified: stats.convertedNodes > 0 || stats.castsInserted > 0, stats };
}

const isFloatMaker = (n: Node): boolean => (n.opType === 'Cast' && n.attrInt('to', 0) === F32) || n.opType === 'Constant' || n.opType === 'ConstantOfShape';

/**
 * Every node: does it compute in float16? The match is the values it writes that become float16 (its
 * float outputs; every output of a node that makes floats: Cast to float32, Constant, ConstantOfShape).
 * The rewrite only records them: the retyping runs once every node is decided (fp16-retype.ts).
 * Exclusions are part of `check` (not applyRules' `exclude`, which runs first): a node with nothing float
 * is not "kept in float32", excluded or not, and the domain and subgraph reasons come before op types.
 */
const fp16Rule: RewriteRule<Ctx, Value[]> = {
  ops: ANY_OP,
  check(n, ctx) {
    const touches = n.inputs.some(isFloat32) || n.outputs.some(isFloat32) || (n.opType === 'Cast' && n.attrInt('to', 0) === F32);
    if (!touches && n.opType !== 'Constant' && n.opType !== 'ConstantOfShape') return null;
    const why = keepReason(n, ctx.o, ctx.block);
    // Nothing float about it; or a constant whose output is not known to be float: nothing kept in float32.
    if (why === null || (why && !touches)) return null;
    if (why) return why;
    const maker = isFloatMaker(n);
    return n.outputs.filter((v): v is Value => !!v && (isFloat32(v) || maker));
  },
  rewrite(n, outputs, ctx) {
    ctx.half.add(n);
    for (const v of outputs) ctx.halfValues.add(v);
    return ctx.o.to;
  },
};

const FP16_RULES: ReadonlyArray<AnyRewriteRule<Ctx>> = Object.freeze([fp16Rule]);

/**
 * The decision in `fp16Rule.check`: undefined: convert; a Skip: keep in float32, for this reason; null:
 * the node has nothing float (the rule does not apply).
 */
function keepReason(n: Node, o: Fp16Options, block: Ctx['block']): Skip | undefined | null {
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
