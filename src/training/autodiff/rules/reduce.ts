import type { Node, Value } from '../../../ir/node.js';
import type { GradContext } from '../context.js';
import type { GradRuleTable } from './types.js';

/**
 * The reduced axes of a ReduceX node, normalized to [0, rank): from the `axes` attribute (before the
 * opset that moved it) or the constant second input; all axes when none are given; [] for a no-op.
 */
export function reducedAxes(ctx: GradContext, node: Node, movedToInputAt: number): number[] {
  const x = node.inputs[0]!;
  const rank = ctx.rank(x);
  let axes: number[] | undefined;
  if (ctx.opset < movedToInputAt) axes = node.attrInts('axes');
  else if (node.inputs[1]) {
    axes = ctx.constInts(node.inputs[1]);
    if (!axes) throw ctx.fail('the axes input must be a constant');
  }
  if (!axes || axes.length === 0) {
    if (node.attrInt('noop_with_empty_axes', 0) === 1) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

/** dY reshaped back to X's rank (Unsqueeze when keepdims=0) and broadcast to X's shape. */
export function expandBack(ctx: GradContext, node: Node, dy: Value, axes: number[]): Value {
  const x = node.inputs[0]!;
  let g = dy;
  // A full reduction without keepdims gives a scalar, which Expand broadcasts as it is.
  const all = axes.length === ctx.rank(x);
  if (node.attrInt('keepdims', 1) === 0 && axes.length && !all) g = ctx.op('Unsqueeze', [g, ctx.ints(axes)]);
  return ctx.op('Expand', [g, ctx.op('Shape', [x])]);
}

export const reduceRules: GradRuleTable = {
  /**
   * Y_i = Σ_{j≤i} X_j along the axis (prefix sum): dX_j = Σ_{i≥j} dY_i, the suffix sum of dY, which is
   * CumSum with `reverse` flipped; `exclusive` keeps its meaning (the diagonal term stays excluded).
   */
  CumSum: (ctx, n, [dy]) => {
    const reverse = n.attrInt('reverse', 0) === 1 ? 0 : 1;
    return [ctx.op('CumSum', [dy!, n.inputs[1]!], { reverse, exclusive: n.attrInt('exclusive', 0) }), null];
  },

  ReduceSum: (ctx, n, [dy]) => {
    const axes = reducedAxes(ctx, n, 13);
    return [axes.length ? expandBack(ctx, n, dy!, axes) : dy!];
  },

  ReduceMean: (ctx, n, [dy]) => {
    const axes = reducedAxes(ctx, n, 18);
    if (!axes.length) return [dy!];
    const x = n.inputs[0]!;
    const et = ctx.elemType(x);
    // count = elements per mean: a constant when the reduced dims are static, else computed at run time
    // (symbolic batch dims) as |X| (full reduction) or |X| / |Y|.
    const shape = ctx.shape(x);
    const dims = axes.map((a) => shape[a]);
    let count: Value;
    if (dims.every((d): d is number => typeof d === 'number')) count = ctx.scalar(dims.reduce((p, d) => p * d, 1), et);
    else {
      count = ctx.op('Cast', [ctx.op('Size', [x])], { to: et });
      if (axes.length < ctx.rank(x)) count = ctx.op('Div', [count, ctx.op('Cast', [ctx.op('Size', [n.outputs[0]!])], { to: et })]);
    }
    return [expandBack(ctx, n, ctx.op('Div', [dy!, count]), axes)];
  },
};
