import { DataType } from '../dtype.js';
import type { Dim } from '../types.js';
import type { OutSpec, RuleContext, RuleTable } from './context.js';
import { addDim, normAxis, productDims } from './dims.js';

/**
 * Reductions. `axes` was an attribute until opset 13 for ReduceSum and until opset 18 for the other
 * ReduceX ops, then an optional input with `noop_with_empty_axes` deciding what "no axes" means.
 */

const AXES_INPUT_SINCE: Record<string, number> = { ReduceSum: 13 };

function reduce(ctx: RuleContext): Array<OutSpec | undefined> {
  const s = ctx.shape(0);
  const elemType = ctx.elem(0);
  const keep = ctx.node.attrInt('keepdims', 1) === 1;
  const since = AXES_INPUT_SINCE[ctx.node.opType] ?? 18;
  let axes: number[] | undefined;
  if (ctx.opset < since) axes = ctx.node.attrInts('axes');
  else if (ctx.has(1)) {
    axes = ctx.nums(1);
    if (!axes) {
      // Unknown axes: with keepdims the rank survives, each dim maybe reduced.
      return [{ elemType, shape: keep && s ? s.map(() => null) : undefined }];
    }
  }
  if (!s) return [{ elemType }];
  if (!axes || axes.length === 0) {
    if (ctx.opset >= since && ctx.node.attrInt('noop_with_empty_axes', 0) === 1) return [{ elemType, shape: s, values: ctx.values(0) }];
    axes = s.map((_, i) => i);
  }
  const set = new Set(axes.map((a) => normAxis(a, s.length) ?? ctx.fail(`axis ${a} out of range for rank ${s.length}`)));
  const shape = keep ? s.map((d, i) => (set.has(i) ? 1 : d)) : s.filter((_, i) => !set.has(i));
  // Fold full reductions of small 1-D values (numel computations in exported shape code).
  let values: Dim[] | undefined;
  const v = ctx.values(0);
  if (v && s.length === 1 && set.size === 1) {
    const op = ctx.node.opType;
    if (op === 'ReduceProd') values = [productDims(v)];
    else if (op === 'ReduceSum') values = [v.reduce<Dim>((a, b) => (a === null || b === null ? null : addDim(a, b)), 0)];
    else if ((op === 'ReduceMax' || op === 'ReduceMin') && v.every((x) => typeof x === 'number')) values = [(op === 'ReduceMax' ? Math.max : Math.min)(...(v as number[]))];
  }
  return [{ elemType, shape, values }];
}

const argReduce = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  if (!s) return [{ elemType: DataType.INT64 }];
  const axis = normAxis(ctx.node.attrInt('axis', 0), s.length) ?? ctx.fail('axis out of range');
  const keep = ctx.node.attrInt('keepdims', 1) === 1;
  return [{ elemType: DataType.INT64, shape: keep ? s.map((d, i) => (i === axis ? 1 : d)) : s.filter((_, i) => i !== axis) }];
};

/** TopK: k is an attribute before opset 10 and a 1-element input after. */
const topK = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  if (!s) return [{ elemType: ctx.elem(0) }, { elemType: DataType.INT64 }];
  const axis = normAxis(ctx.node.attrInt('axis', -1), s.length) ?? ctx.fail('axis out of range');
  const k: Dim = ctx.opset < 10 ? (ctx.node.attrInt('k') ?? null) : (ctx.values(1)?.[0] ?? null);
  const shape = s.map((d, i) => (i === axis ? k : d));
  return [{ elemType: ctx.elem(0), shape }, { elemType: DataType.INT64, shape }];
};

const REDUCE_OPS = ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];

export const reduceRules: RuleTable = {
  ...Object.fromEntries(REDUCE_OPS.map((op) => [op, reduce])),
  ArgMax: argReduce,
  ArgMin: argReduce,
  TopK: topK,
};
