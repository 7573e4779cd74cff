import type { Node, Value } from '../../../ir/node.js';
import type { GradContext } from '../context.js';
import { isFloatType } from './helpers.js';
import type { GradRuleTable } from './types.js';

/**
 * Gradient rules for elementwise arithmetic (Div, Neg, Pow, Sqrt, Exp, Log, Abs, Reciprocal, Erf),
 * selection (Where, Max, Min, Clip), Sum and Cast.
 *
 * Conventions: constants are made in the forward input's element type (`ctx.scalar(v, et)`), so every
 * float type the forward graph uses works; where the derivative is a function of the forward output
 * (Exp, Sqrt, Reciprocal, Div) it reads the output instead of recomputing; binary ops undo
 * broadcasting with `ctx.unbroadcast`; every rule checks `needs[i]` and emits nothing for an input
 * that needs no gradient.
 */

/** dY scaled elementwise by `factor`. */
function times(ctx: GradContext, dy: Value, factor: Value): Value {
  return ctx.op('Mul', [dy, factor]);
}

/**
 * Gradient routing for Max/Min: each input gets dY where it is the selected value. Two inputs use one
 * comparison (ties go to the first); more use equality with the output, ties going to the first
 * input that equals it, so the gradients still sum to dY.
 */
function selectRule(cmp: 'GreaterOrEqual' | 'LessOrEqual') {
  return (ctx: GradContext, n: Node, [dy]: Array<Value | null>, needs: readonly boolean[]): Array<Value | null> => {
    const xs = n.inputs as Value[];
    const y = n.outputs[0]!;
    if (xs.length === 1) return [dy!];
    const zero = ctx.scalar(0, ctx.elemType(y));
    if (xs.length === 2) {
      const [a, b] = xs as [Value, Value];
      if (!needs[0] && !needs[1]) return [null, null];
      const firstWins = ctx.op(cmp, [a, b]);
      return [
        needs[0] ? ctx.unbroadcast(ctx.op('Where', [firstWins, dy!, zero]), y, a) : null,
        needs[1] ? ctx.unbroadcast(ctx.op('Where', [firstWins, zero, dy!]), y, b) : null,
      ];
    }
    const out: Array<Value | null> = xs.map(() => null);
    const last = xs.reduce((m, _x, i) => (needs[i] ? i : m), -1);
    let taken: Value | null = null;
    for (let i = 0; i <= last; i++) {
      const hit: Value = ctx.op('Equal', [xs[i]!, y]);
      const mine: Value = taken ? ctx.op('And', [hit, ctx.op('Not', [taken])]) : hit;
      if (needs[i]) out[i] = ctx.unbroadcast(ctx.op('Where', [mine, dy!, zero]), y, xs[i]!);
      if (i < last) taken = taken ? ctx.op('Or', [taken, mine]) : mine;
    }
    return out;
  };
}

export const elementwiseRules: GradRuleTable = {
  Neg: (ctx, _n, [dy]) => [ctx.op('Neg', [dy!])],

  /** Y = A / B: dA = dY / B, dB = −dY · Y / B (reusing Y saves a Mul). */
  Div: (ctx, n, [dy], needs) => {
    const [a, b] = n.inputs as [Value, Value];
    const y = n.outputs[0]!;
    return [
      needs[0] ? ctx.unbroadcast(ctx.op('Div', [dy!, b]), y, a) : null,
      needs[1] ? ctx.unbroadcast(ctx.op('Neg', [ctx.op('Div', [times(ctx, dy!, y), b])]), y, b) : null,
    ];
  },

  /**
   * Y = A^B: dA = dY · B · A^(B−1); dB = dY · Y · ln A, with ln A taken as 0 where A ≤ 0 (there the
   * real power is only defined for integer B, whose exponent gradient is zero by convention, as in
   * TensorFlow). An exponent of another type (opset 13+ allows int exponents) is cast to A's type.
   */
  Pow: (ctx, n, [dy], needs) => {
    const [a, b] = n.inputs as [Value, Value];
    const y = n.outputs[0]!;
    const et = ctx.elemType(a);
    const out: Array<Value | null> = [null, null];
    if (needs[0]) {
      const bf = ctx.elemType(b) === et ? b : ctx.op('Cast', [b], { to: et });
      const slope = ctx.op('Mul', [bf, ctx.op('Pow', [a, ctx.op('Sub', [bf, ctx.scalar(1, et)])])]);
      out[0] = ctx.unbroadcast(times(ctx, dy!, slope), y, a);
    }
    if (needs[1]) {
      if (!isFloatType(ctx.elemType(b))) throw ctx.fail(`the exponent '${b.name}' is not a float tensor and has no gradient`);
      const zero = ctx.scalar(0, et);
      const positive = ctx.op('Greater', [a, zero]);
      // Where selects, so the NaN/−inf Log gives where A ≤ 0 never reaches the result.
      const lnA = ctx.op('Where', [positive, ctx.op('Log', [a]), zero]);
      let g = times(ctx, times(ctx, dy!, y), lnA);
      if (ctx.elemType(b) !== et) g = ctx.op('Cast', [g], { to: ctx.elemType(b) });
      out[1] = ctx.unbroadcast(g, y, b);
    }
    return out;
  },

  /** Y = √X: dX = dY / (2Y). */
  Sqrt: (ctx, n, [dy]) => {
    const y = n.outputs[0]!;
    return [ctx.op('Div', [times(ctx, dy!, ctx.scalar(0.5, ctx.elemType(y))), y])];
  },

  /** Y = eˣ: dX = dY · Y. */
  Exp: (ctx, n, [dy]) => [times(ctx, dy!, n.outputs[0]!)],

  /** Y = ln X: dX = dY / X. */
  Log: (ctx, n, [dy]) => [ctx.op('Div', [dy!, n.inputs[0]!])],

  /** Y = |X|: dX = dY · sign(X) (0 at X = 0, the subgradient PyTorch and TensorFlow use). */
  Abs: (ctx, n, [dy]) => [times(ctx, dy!, ctx.op('Sign', [n.inputs[0]!]))],

  /** Y = 1/X: dX = −dY · Y². */
  Reciprocal: (ctx, n, [dy]) => {
    const y = n.outputs[0]!;
    return [ctx.op('Neg', [times(ctx, dy!, ctx.op('Mul', [y, y]))])];
  },

  /** Y = erf X: dX = dY · 2/√π · exp(−X²). */
  Erf: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const et = ctx.elemType(x);
    const gauss = ctx.op('Exp', [ctx.op('Neg', [ctx.op('Mul', [x, x])])]);
    return [times(ctx, dy!, ctx.op('Mul', [gauss, ctx.scalar(2 / Math.sqrt(Math.PI), et)]))];
  },

  /** Y = Σ Xᵢ (variadic, broadcasting): dXᵢ = dY summed back to Xᵢ's shape. */
  Sum: (ctx, n, [dy], needs) => {
    const y = n.outputs[0]!;
    return n.inputs.map((x, i) => (x && needs[i] ? ctx.unbroadcast(dy!, y, x) : null));
  },

  Max: selectRule('GreaterOrEqual'),
  Min: selectRule('LessOrEqual'),

  /** Y = Where(C, X, Y'): the condition has no gradient; X gets dY where C, Y' where not. */
  Where: (ctx, n, [dy], needs) => {
    const [cond, x, other] = n.inputs as [Value, Value, Value];
    const y = n.outputs[0]!;
    const zero = ctx.scalar(0, ctx.elemType(y));
    return [
      null,
      needs[1] ? ctx.unbroadcast(ctx.op('Where', [cond, dy!, zero]), y, x) : null,
      needs[2] ? ctx.unbroadcast(ctx.op('Where', [cond, zero, dy!]), y, other) : null,
    ];
  },

  /**
   * Y = clip(X, min, max): dX = dY where min ≤ X ≤ max (ties pass to X), 0 elsewhere. The bounds, when
   * they need a gradient, get the sum of dY over the elements they clipped. (When min > max ONNX
   * outputs max everywhere; that degenerate case is not special-cased.)
   */
  Clip: (ctx, n, [dy], needs) => {
    const x = n.inputs[0]!;
    const lo = n.inputs[1] ?? null;
    const hi = n.inputs[2] ?? null;
    const zero = ctx.scalar(0, ctx.elemType(x));
    const out: Array<Value | null> = [null, null, null];
    if (needs[0]) {
      let keep: Value | null = lo ? ctx.op('GreaterOrEqual', [x, lo]) : null;
      if (hi) {
        const under = ctx.op('LessOrEqual', [x, hi]);
        keep = keep ? ctx.op('And', [keep, under]) : under;
      }
      out[0] = keep ? ctx.op('Where', [keep, dy!, zero]) : dy!;
    }
    // A bound's gradient: Σ dY over the elements it replaced (scalar, like the bound).
    const boundGrad = (bound: Value, cmp: 'Less' | 'Greater') => ctx.op('ReduceSum', [ctx.op('Where', [ctx.op(cmp, [x, bound]), dy!, zero])], { keepdims: 0 });
    if (lo && needs[1]) out[1] = boundGrad(lo, 'Less');
    if (hi && needs[2]) out[2] = boundGrad(hi, 'Greater');
    return out;
  },

  /** Y = Cast(X): dX = Cast(dY) back to X's type; none across non-float types. */
  Cast: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const from = ctx.elemType(x);
    if (!isFloatType(from) || !isFloatType(ctx.elemType(n.outputs[0]!))) return [null];
    return [ctx.op('Cast', [dy!], { to: from })];
  },
};
