import { DataType } from '../../../ir/dtype.js';
import type { Value } from '../../../ir/node.js';
import { elemTypeOf } from '../../../ir/types.js';
import type { GradContext } from '../context.js';
import type { GradRuleTable } from './types.js';
import { zerosLike } from './helpers.js';
import { floatConst } from './window.js';

/** A start past any dim, for "to the beginning" in a reversing Slice (ONNX clamps it). */
const FAR = 9007199254740991;

interface AxisSlice {
  axis: number;
  dim: number;
  /** Number of elements selected. */
  count: number;
  /** Lowest selected position. */
  lo: number;
  step: number;
}

/** Resolves one (start, end, step) triple against a static dim exactly as ONNX Slice does. */
function resolveSlice(start: number, end: number, step: number, dim: number): { count: number; lo: number } {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  const clamp = (v: number, a: number, b: number) => Math.min(Math.max(v, a), b);
  if (step > 0) {
    start = clamp(start, 0, dim);
    end = clamp(end, 0, dim);
  } else {
    start = clamp(start, 0, dim - 1);
    end = clamp(end, -1, dim - 1);
  }
  const count = Math.max(0, Math.ceil((end - start) / step));
  return { count, lo: step > 0 ? start : start + (count - 1) * step };
}

/** Slice of a 1-D int64 shape tensor `[from, to)`. */
function dims(ctx: GradContext, shape: Value, from: number, to: number): Value {
  return ctx.op('Slice', [shape, ctx.ints([from]), ctx.ints([to])]);
}

/**
 * Gradient of a step-1 Slice whose starts/ends are run-time values: begin pads are the starts clamped
 * to [0, dim] (negative starts count from the end), end pads are dim − begin − (output size), both per
 * sliced axis and computed in the graph; the rest of the pads are zero.
 */
function runtimeSlicePad(ctx: GradContext, x: Value, y: Value, dy: Value, startsInput: Value, axes: number[], rank: number): Value {
  const xShape = ctx.op('Shape', [x]);
  const yShape = ctx.op('Shape', [y]);
  const norm = axes.map((a) => (a < 0 ? a + rank : a));
  const axisIdx = ctx.ints(norm);
  const dimsX = ctx.op('Gather', [xShape, axisIdx], { axis: 0 });
  const dimsY = ctx.op('Gather', [yShape, axisIdx], { axis: 0 });
  const starts64 = ctx.op('Cast', [startsInput], { to: DataType.INT64 });
  const zero = ctx.ints([0], []);
  // start < 0 counts from the end; then clamp to [0, dim].
  const wrapped = ctx.op('Where', [ctx.op('Less', [starts64, zero]), ctx.op('Add', [starts64, dimsX]), starts64]);
  const begin = ctx.op('Min', [ctx.op('Max', [wrapped, zero]), dimsX]);
  const end = ctx.op('Sub', [ctx.op('Sub', [dimsX, begin]), dimsY]);
  // Scatter the per-axis pads into full-rank zero vectors.
  const full = ctx.ints(new Array(rank).fill(0));
  const idx = ctx.ints(norm, [norm.length, 1]);
  const beginAll = ctx.op('ScatterND', [full, idx, begin]);
  const endAll = ctx.op('ScatterND', [full, idx, end]);
  return ctx.op('Pad', [dy, ctx.op('Concat', [beginAll, endAll], { axis: 0 })]);
}

export const indexingRules: GradRuleTable = {
  /**
   * dY placed back where the slice took it, zeros elsewhere. Per sliced axis (the placement is
   * separable): a negative step is undone by reversing dY along the axis; a step s > 1 by interleaving
   * s−1 zeros after each element (Unsqueeze, Pad, merge), trimmed so it does not run past the input;
   * then one Pad puts every axis at its offset. starts/ends/axes/steps must be constants and the sliced
   * dims static; other dims may be symbolic.
   */
  Slice: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const xs = ctx.shape(x);
    const rank = xs.length;
    const starts = ctx.constInts(n.inputs[1]);
    const ends = ctx.constInts(n.inputs[2]);
    const axes = n.inputs[3] ? ctx.constInts(n.inputs[3]) : starts?.map((_, i) => i);
    const steps = n.inputs[4] ? ctx.constInts(n.inputs[4]) : starts?.map(() => 1);
    if (!axes || !steps) throw ctx.fail('axes and steps must be constants');
    if (!starts || !ends || axes.some((a) => typeof xs[a < 0 ? a + rank : a] !== 'number')) {
      // Bounds known only at run time (position tables sliced to the sequence length): step-1 slices
      // are a Pad of dY by (start, dim − start − count) per axis, computed in the graph.
      if (steps.every((st) => st === 1)) return [runtimeSlicePad(ctx, n.inputs[0]!, n.outputs[0]!, dy!, n.inputs[1]!, axes, rank), ...[null, null, null, null]];
      throw ctx.fail('starts and ends must be constants when a step is not 1 or a sliced dim is symbolic');
    }
    const nulls = [null, null, null, null];
    const slices: AxisSlice[] = [];
    for (let j = 0; j < starts.length; j++) {
      const axis = axes[j]! < 0 ? axes[j]! + rank : axes[j]!;
      const dim = xs[axis];
      if (typeof dim !== 'number') throw ctx.fail(`sliced axis ${axis} of '${x.name}' must have a static size`);
      const { count, lo } = resolveSlice(starts[j]!, ends[j]!, steps[j]!, dim);
      if (count === 0) return [zerosLike(ctx, x), ...nulls];
      slices.push({ axis, dim, count, lo, step: steps[j]! });
    }
    let g = dy!;
    const pads = new Array<number>(2 * rank).fill(0);
    for (const s of slices) {
      const stride = Math.abs(s.step);
      if (s.step < 0) g = ctx.op('Slice', [g, ctx.ints([-1]), ctx.ints([-FAR]), ctx.ints([s.axis]), ctx.ints([-1])]);
      let len = s.count;
      if (stride > 1 && s.count > 1) {
        // [.., n, ..] → [.., n, 1, ..] → pad to [.., n, s, ..] → merge to [.., n·s, ..].
        const padded = ctx.op('Pad', [ctx.op('Unsqueeze', [g, ctx.ints([s.axis + 1])]), ctx.ints(interleavePads(rank + 1, s.axis + 1, stride - 1))]);
        const shape = ctx.op('Shape', [padded]);
        const merged = ctx.op('Concat', [dims(ctx, shape, 0, s.axis), ctx.ints([-1]), dims(ctx, shape, s.axis + 2, rank + 1)], { axis: 0 });
        g = ctx.op('Reshape', [padded, merged]);
        len = Math.min(s.count * stride, s.dim - s.lo);
        if (len < s.count * stride) g = ctx.op('Slice', [g, ctx.ints([0]), ctx.ints([len]), ctx.ints([s.axis])]);
      }
      pads[s.axis] = s.lo;
      pads[s.axis + rank] = s.dim - s.lo - len;
    }
    if (pads.some((p) => p !== 0)) g = ctx.op('Pad', [g, ctx.ints(pads)]);
    return [g, ...nulls];
  },

  /**
   * dData = zeros with each dY slice added at the row its index picked (repeated indices accumulate).
   * The gathered axis is moved to the front so the scatter is over axis 0: ScatterND with
   * reduction='add' (opset ≥ 16), or before opset 16 a one-hot matrix product OneHot(idx)ᵀ·dY, which
   * costs O(K·D·rest) but needs no scatter-add. Negative indices are wrapped first.
   */
  Gather: (ctx, n, [dy]) => {
    const data = n.inputs[0]!;
    const indices = n.inputs[1]!;
    const rData = ctx.rank(data);
    const rIdx = ctx.rank(indices);
    let axis = n.attrInt('axis', 0);
    if (axis < 0) axis += rData;
    const et = ctx.elemType(data);
    const dataShape = ctx.op('Shape', [data]);
    const dimA = ctx.op('Gather', [dataShape, ctx.ints([axis], [])]);
    let idx = elemTypeOf(indices.type) === DataType.INT64 ? indices : ctx.op('Cast', [indices], { to: DataType.INT64 });
    const known = ctx.constInts(indices);
    if (!known || known.some((i) => i < 0)) idx = ctx.op('Where', [ctx.op('Less', [idx, ctx.ints([0], [])]), ctx.op('Add', [idx, dimA]), idx]);

    // dY is data[:axis] ++ I ++ data[axis+1:]; move I to the front.
    const rY = rData - 1 + rIdx;
    let g = dy!;
    const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
    if (axis !== 0) g = ctx.op('Transpose', [g], { perm: [...range(axis, axis + rIdx), ...range(0, axis), ...range(axis + rIdx, rY)] });
    const moved = [axis, ...range(0, axis), ...range(axis + 1, rData)];
    const movedShape = axis === 0 ? dataShape : ctx.op('Gather', [dataShape, ctx.ints(moved)]);

    let grad: Value;
    if (ctx.opset >= 16) {
      // ORT's CPU provider has no float16 scatter-add: accumulate in float32 (also more exact when a
      // token repeats) and cast the sum back.
      const acc = et === DataType.FLOAT16 ? DataType.FLOAT : et;
      const zeros = ctx.op('Expand', [ctx.scalar(0, acc), movedShape]);
      const updates = acc === et ? g : ctx.op('Cast', [g], { to: acc });
      grad = ctx.op('ScatterND', [zeros, ctx.op('Unsqueeze', [idx, ctx.ints([-1])]), updates], { reduction: 'add' });
      if (acc !== et) grad = ctx.op('Cast', [grad], { to: et });
    } else {
      const flatIdx = ctx.op('Reshape', [idx, ctx.ints([-1])]);
      // ORT implements OneHot with float values (not double): build it in float, exact, then cast.
      let oneHot = ctx.op('OneHot', [flatIdx, dimA, floatConst(ctx, [2], [0, 1], DataType.FLOAT)], { axis: -1 });
      if (et !== DataType.FLOAT) oneHot = ctx.op('Cast', [oneHot], { to: et });
      const rows = ctx.op('Reshape', [g, ctx.op('Concat', [ctx.op('Shape', [flatIdx]), ctx.ints([-1])], { axis: 0 })]);
      grad = ctx.op('Reshape', [ctx.op('MatMul', [ctx.op('Transpose', [oneHot], { perm: [1, 0] }), rows]), movedShape]);
    }
    if (axis !== 0) {
      const inverse = new Array<number>(rData);
      moved.forEach((p, i) => (inverse[p] = i));
      grad = ctx.op('Transpose', [grad], { perm: inverse });
    }
    return [grad, null];
  },
};

/** Pad amounts (ONNX layout: all begins, then all ends) adding `after` zeros at the end of `axis`. */
function interleavePads(rank: number, axis: number, after: number): number[] {
  const pads = new Array<number>(2 * rank).fill(0);
  pads[rank + axis] = after;
  return pads;
}
