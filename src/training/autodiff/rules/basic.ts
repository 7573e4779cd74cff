import type { GradRuleTable } from './types.js';

/**
 * Rules for the core arithmetic ops: Add, Sub, Mul, MatMul, Relu, Identity. Broadcast inputs get their
 * gradient summed back to their own shape (`ctx.unbroadcast`).
 */
export const basicRules: GradRuleTable = {
  Identity: (_ctx, _n, [dy]) => [dy!],

  Add: (ctx, n, [dy]) => {
    const [a, b] = n.inputs as [NonNullable<(typeof n.inputs)[0]>, NonNullable<(typeof n.inputs)[0]>];
    const y = n.outputs[0]!;
    return [ctx.needs(0) ? ctx.unbroadcast(dy!, y, a) : null, ctx.needs(1) ? ctx.unbroadcast(dy!, y, b) : null];
  },

  Sub: (ctx, n, [dy]) => {
    const [a, b] = n.inputs as [NonNullable<(typeof n.inputs)[0]>, NonNullable<(typeof n.inputs)[0]>];
    const y = n.outputs[0]!;
    return [ctx.needs(0) ? ctx.unbroadcast(dy!, y, a) : null, ctx.needs(1) ? ctx.unbroadcast(ctx.op('Neg', [dy!]), y, b) : null];
  },

  Mul: (ctx, n, [dy]) => {
    const [a, b] = n.inputs as [NonNullable<(typeof n.inputs)[0]>, NonNullable<(typeof n.inputs)[0]>];
    const y = n.outputs[0]!;
    return [
      ctx.needs(0) ? ctx.unbroadcast(ctx.op('Mul', [dy!, b]), y, a) : null,
      ctx.needs(1) ? ctx.unbroadcast(ctx.op('Mul', [dy!, a]), y, b) : null,
    ];
  },

  Relu: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const zero = ctx.scalar(0, ctx.elemType(x));
    return [ctx.op('Where', [ctx.op('Greater', [x, zero]), dy!, ctx.op('Mul', [dy!, zero])])];
  },

  /**
   * Y = A·B with numpy batching. dA = dY·Bᵀ, dB = Aᵀ·dY, where ᵀ swaps the last two axes; 1-D operands
   * are promoted to matrices first, and batch axes that were broadcast are summed back.
   */
  MatMul: (ctx, n, [dy]) => {
    const a = n.inputs[0]!;
    const b = n.inputs[1]!;
    const y = n.outputs[0]!;
    const ra = ctx.rank(a);
    const rb = ctx.rank(b);
    if (ra < 2 || rb < 2) throw ctx.fail('1-D MatMul operands are not supported yet; reshape them to 2-D');
    const swap = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
    const ry = ctx.rank(y);
    const out: Array<typeof dy> = [null, null];
    if (ctx.needs(0)) {
      const bt = ctx.op('Transpose', [b], { perm: swap(rb) });
      out[0] = ctx.unbroadcastMatmul(ctx.op('MatMul', [dy!, bt]), ry, a);
    }
    if (ctx.needs(1)) {
      const at = ctx.op('Transpose', [a], { perm: swap(ra) });
      out[1] = ctx.unbroadcastMatmul(ctx.op('MatMul', [at, dy!]), ry, b);
    }
    return out;
  },
};
