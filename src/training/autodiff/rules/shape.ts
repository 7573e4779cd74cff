import type { Value } from '../../../ir/node.js';
import type { GradContext } from '../context.js';
import type { GradRuleTable } from './types.js';
import { zerosLike } from './helpers.js';

/** dY reshaped back to X's run-time shape: the whole rule for ops that only relabel elements. */
const reshapeBack = (ctx: GradContext, x: Value, dy: Value): Value => ctx.op('Reshape', [dy, ctx.op('Shape', [x])]);

/** Slice of a 1-D int64 shape tensor `[from, to)` (Shape's start/end attributes need opset 15). */
function dims(ctx: GradContext, shape: Value, from: number, to: number): Value {
  return ctx.op('Slice', [shape, ctx.ints([from]), ctx.ints([to])]);
}

/**
 * Rules for ops that move, split or replicate elements without arithmetic. Shape-like inputs (shape,
 * axes, split sizes, repeats) are not differentiable: their gradient is null.
 */
export const shapeRules: GradRuleTable = {
  Reshape: (ctx, n, [dy]) => [reshapeBack(ctx, n.inputs[0]!, dy!), null],
  Flatten: (ctx, n, [dy]) => [reshapeBack(ctx, n.inputs[0]!, dy!)],
  Squeeze: (ctx, n, [dy]) => [reshapeBack(ctx, n.inputs[0]!, dy!), null],
  Unsqueeze: (ctx, n, [dy]) => [reshapeBack(ctx, n.inputs[0]!, dy!), null],

  Transpose: (ctx, n, [dy]) => {
    const rank = ctx.rank(n.inputs[0]!);
    const perm = n.attrInts('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    return [ctx.op('Transpose', [dy!], { perm: inverse })];
  },

  /** dY split back into the inputs' extents along `axis` (sizes read statically, else at run time). */
  Concat: (ctx, n, [dy], needs) => {
    const inputs = n.inputs as Value[];
    const rank = ctx.rank(n.outputs[0]!);
    let axis = n.attrInt('axis', 0);
    if (axis < 0) axis += rank;
    const sizes = inputs.map((v) => ctx.shape(v)[axis]);
    const split = sizes.every((d): d is number => typeof d === 'number')
      ? ctx.ints(sizes)
      : ctx.op('Concat', inputs.map((v) => dims(ctx, ctx.op('Shape', [v]), axis, axis + 1)), { axis: 0 });
    if (inputs.length === 1) return [dy!];
    const parts = ctx.ops('Split', [dy!, split], inputs.length, { axis });
    return parts.map((p, i) => (needs[i] ? p : null));
  },

  /** The output gradients concatenated back; outputs the loss does not read contribute zeros. */
  Split: (ctx, n, dOut) => {
    const rank = ctx.rank(n.inputs[0]!);
    let axis = n.attrInt('axis', 0);
    if (axis < 0) axis += rank;
    const parts = n.outputs.map((o, i) => dOut[i] ?? zerosLike(ctx, o!));
    return [parts.length === 1 ? parts[0]! : ctx.op('Concat', parts, { axis }), null];
  },

  Expand: (ctx, n, [dy]) => [ctx.unbroadcast(dy!, n.outputs[0]!, n.inputs[0]!), null],

  /**
   * Y = Tile(X, r): view dY [r₀·d₀, r₁·d₁, ...] as [r₀, d₀, r₁, d₁, ...] (target shape built at run time
   * so symbolic dims work) and sum the repeat axes.
   */
  Tile: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const repeats = ctx.constInts(n.inputs[1]);
    if (!repeats) throw ctx.fail('the repeats input must be a constant');
    const shape = ctx.op('Shape', [x]);
    const target = ctx.op('Concat', repeats.flatMap((r, i) => [ctx.ints([r]), dims(ctx, shape, i, i + 1)]), { axis: 0 });
    const viewed = ctx.op('Reshape', [dy!, target]);
    return [ctx.op('ReduceSum', [viewed, ctx.ints(repeats.map((_, i) => 2 * i))], { keepdims: 0 }), null];
  },

  /**
   * Constant-mode Pad is adjoint to cropping: dX = Pad(dY, −pads) (negative pads crop; where the forward
   * cropped, the negated pads restore the extent with zeros). reflect/edge/wrap are not supported.
   */
  Pad: (ctx, n, [dy]) => {
    const mode = n.attrString('mode', 'constant');
    if (mode !== 'constant') throw ctx.fail(`Pad mode '${mode}' has no gradient rule yet (constant only)`);
    const pads = ctx.constInts(n.inputs[1]);
    if (!pads) throw ctx.fail('the pads input must be a constant');
    const axes = n.inputs[3] ?? null;
    return [ctx.op('Pad', axes ? [dy!, ctx.ints(pads.map((p) => -p)), null, axes] : [dy!, ctx.ints(pads.map((p) => -p))]), null, null, null];
  },

};
