import { DataType } from '../../../ir/dtype.js';
import type { Value } from '../../../ir/node.js';
import { shapeOf, tensorType } from '../../../ir/types.js';
import type { GradContext } from '../context.js';
import { constBool, constFloat } from './helpers.js';
import type { GradRuleTable } from './types.js';

/**
 * Gradient rules for activations and normalizers applied along an axis: LeakyRelu, Gelu (both
 * `approximate` forms), Sigmoid, Tanh, Softmax, LogSoftmax, and Dropout. Where the derivative is a
 * function of the forward output (Sigmoid, Tanh, Softmax, LogSoftmax) the rule reads the output.
 */

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_TANH_K = 0.044715;

/** The softmax axis (opset ≥ 13: one axis, default −1), normalized to [0, rank). */
function softmaxAxis(ctx: GradContext, x: Value, axis: number): number {
  const rank = ctx.rank(x);
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw ctx.fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Gelu'(x) = Φ(x) + x·φ(x), with Φ the standard normal CDF and φ its density. */
function geluErfSlope(ctx: GradContext, x: Value, et: number): Value {
  const s = (v: number) => ctx.scalar(v, et);
  const cdf = ctx.op('Mul', [ctx.op('Add', [ctx.op('Erf', [ctx.op('Mul', [x, s(SQRT1_2)])]), s(1)]), s(0.5)]);
  const pdf = ctx.op('Mul', [ctx.op('Exp', [ctx.op('Mul', [ctx.op('Mul', [x, x]), s(-0.5)])]), s(INV_SQRT_2PI)]);
  return ctx.op('Add', [cdf, ctx.op('Mul', [x, pdf])]);
}

/**
 * With u = √(2/π)(x + k x³) and t = tanh u, Gelu_tanh(x) = ½x(1 + t), so
 * Gelu_tanh'(x) = ½(1 + t) + ½x(1 − t²) · √(2/π)(1 + 3k x²).
 */
function geluTanhSlope(ctx: GradContext, x: Value, et: number): Value {
  const s = (v: number) => ctx.scalar(v, et);
  const x2 = ctx.op('Mul', [x, x]);
  const u = ctx.op('Mul', [ctx.op('Add', [x, ctx.op('Mul', [ctx.op('Mul', [x2, x]), s(GELU_TANH_K)])]), s(SQRT_2_OVER_PI)]);
  const t = ctx.op('Tanh', [u]);
  const du = ctx.op('Mul', [ctx.op('Add', [ctx.op('Mul', [x2, s(3 * GELU_TANH_K)]), s(1)]), s(SQRT_2_OVER_PI)]);
  const left = ctx.op('Mul', [ctx.op('Add', [t, s(1)]), s(0.5)]);
  const sech2 = ctx.op('Sub', [s(1), ctx.op('Mul', [t, t])]);
  const right = ctx.op('Mul', [ctx.op('Mul', [ctx.op('Mul', [x, s(0.5)]), sech2]), du]);
  return ctx.op('Add', [left, right]);
}

export const activationRules: GradRuleTable = {
  /** dX = dY where X > 0, alpha·dY elsewhere. */
  LeakyRelu: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const et = ctx.elemType(x);
    const alpha = n.attrFloat('alpha', 0.01);
    return [ctx.op('Where', [ctx.op('Greater', [x, ctx.scalar(0, et)]), dy!, ctx.op('Mul', [dy!, ctx.scalar(alpha, et)])])];
  },

  /** Gelu (opset 20): exact (`approximate` = 'none', the erf form) or the tanh approximation. */
  Gelu: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const et = ctx.elemType(x);
    const approximate = n.attrString('approximate', 'none');
    if (approximate !== 'none' && approximate !== 'tanh') throw ctx.fail(`unknown approximate='${approximate}' (expected 'none' or 'tanh')`);
    const slope = approximate === 'tanh' ? geluTanhSlope(ctx, x, et) : geluErfSlope(ctx, x, et);
    return [ctx.op('Mul', [dy!, slope])];
  },

  /** Y = σ(X): dX = dY · Y · (1 − Y). */
  Sigmoid: (ctx, n, [dy]) => {
    const y = n.outputs[0]!;
    const one = ctx.scalar(1, ctx.elemType(y));
    return [ctx.op('Mul', [ctx.op('Mul', [dy!, y]), ctx.op('Sub', [one, y])])];
  },

  /** Y = tanh X: dX = dY · (1 − Y²). */
  Tanh: (ctx, n, [dy]) => {
    const y = n.outputs[0]!;
    const one = ctx.scalar(1, ctx.elemType(y));
    return [ctx.op('Mul', [dy!, ctx.op('Sub', [one, ctx.op('Mul', [y, y])])])];
  },

  /** Y = softmax(X) along `axis`: dX = Y · (dY − Σ_axis dY·Y). */
  Softmax: (ctx, n, [dy]) => {
    const y = n.outputs[0]!;
    const axis = softmaxAxis(ctx, n.inputs[0]!, n.attrInt('axis', -1));
    const dot = ctx.op('ReduceSum', [ctx.op('Mul', [dy!, y]), ctx.ints([axis])], { keepdims: 1 });
    return [ctx.op('Mul', [y, ctx.op('Sub', [dy!, dot])])];
  },

  /** Y = log softmax(X) along `axis`: dX = dY − exp(Y) · Σ_axis dY. */
  LogSoftmax: (ctx, n, [dy]) => {
    const y = n.outputs[0]!;
    const axis = softmaxAxis(ctx, n.inputs[0]!, n.attrInt('axis', -1));
    const total = ctx.op('ReduceSum', [dy!, ctx.ints([axis])], { keepdims: 1 });
    return [ctx.op('Sub', [dy!, ctx.op('Mul', [ctx.op('Exp', [y]), total])])];
  },

  /**
   * Dropout (opset 12+: inputs data, ratio, training_mode). Without training_mode, or with a constant
   * false one, it is the identity. In training mode Y = X · mask / (1 − ratio), so
   * dX = dY · mask / (1 − ratio): the mask must be the one the forward pass drew, so a node that does
   * not output its mask is given a mask output (the forward node is changed; its output 0 is not).
   * A ratio or training_mode computed at run time is read at run time (in eval mode ORT's mask is all
   * true and the scale must be 1).
   */
  Dropout: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const et = ctx.elemType(x);
    const ratioIn = n.inputs[1] ?? null;
    const mode = n.inputs[2] ?? null;
    const constMode = constBool(mode);
    if (!mode || constMode === false) return [dy!, null, null];
    let mask = n.outputs[1] ?? null;
    if (!mask) {
      mask = ctx.graph.createValue(`${n.name || 'dropout'}_mask`, tensorType(DataType.BOOL, shapeOf(x.type)));
      n.setOutput(1, mask);
    }
    const one = ctx.scalar(1, et);
    let scale: Value | null;
    const ratio = ratioIn ? constFloat(ratioIn) : 0.5;
    if (ratio !== undefined) {
      if (!(ratio >= 0 && ratio < 1)) throw ctx.fail(`ratio ${ratio} is outside [0, 1)`);
      scale = ratio === 0 ? null : ctx.scalar(1 / (1 - ratio), et);
    } else {
      const r = ctx.elemType(ratioIn!) === et ? ratioIn! : ctx.op('Cast', [ratioIn!], { to: et });
      scale = ctx.op('Reciprocal', [ctx.op('Sub', [one, r])]);
    }
    if (scale && constMode === undefined) scale = ctx.op('Where', [mode, scale, one]);
    const kept = ctx.op('Where', [mask, dy!, ctx.scalar(0, et)]);
    return [scale ? ctx.op('Mul', [kept, scale]) : kept, null, null];
  },
};
