import type { Value } from '../../../ir/node.js';
import { elemTypeOf } from '../../../ir/types.js';
import type { GradContext } from '../context.js';
import type { GradRuleTable } from './types.js';
import { reduceMean } from './window.js';

/** `v` cast to `et` unless its element type is known to be `et` already. */
function castTo(ctx: GradContext, v: Value, et: number): Value {
  return elemTypeOf(v.type) === et ? v : ctx.op('Cast', [v], { to: et });
}

/**
 * Normalizations: LayerNormalization (opset 17) and BatchNormalization in inference mode (fixed
 * statistics, for fine-tuning with frozen statistics; training-mode BatchNormalization is rewritten
 * into primitive ops by `prepareForTraining` before differentiation).
 */
export const normRules: GradRuleTable = {
  /**
   * Y = x̂·Scale + B with x̂ = (X − μ)·σ⁻¹ over axes [axis, rank). With g = dY·Scale:
   * dX = σ⁻¹·(g − mean(g) − x̂·mean(g·x̂)), dScale = Σ dY·x̂ and dB = Σ dY over the broadcast axes.
   * μ and σ⁻¹ come from the forward's Mean/InvStdDev outputs when present (cast from stash_type), else
   * they are recomputed.
   */
  LayerNormalization: (ctx, n, [dy], needs) => {
    const x = n.inputs[0]!;
    const scale = n.inputs[1]!;
    const bias = n.inputs[2] ?? null;
    const y = n.outputs[0]!;
    const rank = ctx.rank(x);
    let axis = n.attrInt('axis', -1);
    if (axis < 0) axis += rank;
    const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
    const et = ctx.elemType(x);
    let mean: Value;
    let inv: Value;
    if (n.outputs[1] && n.outputs[2]) {
      mean = castTo(ctx, n.outputs[1], et);
      inv = castTo(ctx, n.outputs[2], et);
    } else {
      mean = reduceMean(ctx, x, axes);
      const d = ctx.op('Sub', [x, mean]);
      const variance = reduceMean(ctx, ctx.op('Mul', [d, d]), axes);
      inv = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance, ctx.scalar(n.attrFloat('epsilon', 1e-5), et)])])]);
    }
    const xhat = ctx.op('Mul', [ctx.op('Sub', [x, mean]), inv]);
    const out: Array<Value | null> = [null, null, null];
    if (needs[0]) {
      const g = ctx.op('Mul', [dy!, scale]);
      const m1 = reduceMean(ctx, g, axes);
      const m2 = reduceMean(ctx, ctx.op('Mul', [g, xhat]), axes);
      out[0] = ctx.op('Mul', [inv, ctx.op('Sub', [ctx.op('Sub', [g, m1]), ctx.op('Mul', [xhat, m2])])]);
    }
    if (needs[1]) out[1] = ctx.unbroadcast(ctx.op('Mul', [dy!, xhat]), y, scale);
    if (bias && needs[2]) out[2] = ctx.unbroadcast(dy!, y, bias);
    return out;
  },

  /**
   * Inference mode: Y = (X − mean)·s + B with s = scale/√(var + ε) per channel (axis 1), all else fixed.
   * dX = dY·s; dScale = Σ dY·x̂; dB = Σ dY; dMean = −Σ dY·s; dVar = −½·Σ dY·(X − mean)·scale·(var + ε)^−3/2,
   * sums over every axis but the channel axis.
   */
  BatchNormalization: (ctx, n, [dy], needs) => {
    if (n.attrInt('training_mode', 0) === 1) {
      throw ctx.fail('training-mode BatchNormalization has no direct rule: run prepareForTraining(model) first, which rewrites it into primitive ops');
    }
    const [x, scale, , mean, variance] = n.inputs as Value[];
    const rank = ctx.rank(x!);
    const et = ctx.elemType(x!);
    // [C] → [C, 1, ...] so per-channel vectors broadcast against [N, C, spatial...].
    const perChannel = (v: Value) => (rank > 2 ? ctx.op('Unsqueeze', [v, ctx.ints(Array.from({ length: rank - 2 }, (_, i) => i + 1))]) : v);
    const sumAxes = ctx.ints([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)]);
    const sum = (v: Value) => ctx.op('ReduceSum', [v, sumAxes], { keepdims: 0 });
    const inv = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance!, ctx.scalar(n.attrFloat('epsilon', 1e-5), et)])])]);
    const s = ctx.op('Mul', [scale!, inv]);
    const out: Array<Value | null> = [null, null, null, null, null];
    if (needs[0]) out[0] = ctx.op('Mul', [dy!, perChannel(s)]);
    const needCentered = needs[1] || needs[4];
    const dyCentered = needCentered ? sum(ctx.op('Mul', [dy!, ctx.op('Sub', [x!, perChannel(mean!)])])) : null;
    if (needs[1]) out[1] = ctx.op('Mul', [dyCentered!, inv]);
    const dySum = needs[2] || needs[3] ? sum(dy!) : null;
    if (needs[2]) out[2] = dySum;
    if (needs[3]) out[3] = ctx.op('Neg', [ctx.op('Mul', [dySum!, s])]);
    if (needs[4]) {
      const inv3 = ctx.op('Mul', [inv, ctx.op('Mul', [inv, inv])]);
      out[4] = ctx.op('Mul', [ctx.op('Mul', [dyCentered!, scale!]), ctx.op('Mul', [inv3, ctx.scalar(-0.5, et)])]);
    }
    return out;
  },
};
