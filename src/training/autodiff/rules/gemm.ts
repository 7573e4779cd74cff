import { float, type Value } from '../../../ir/node.js';
import type { GradContext } from '../context.js';
import type { GradRuleTable } from './types.js';

/** Gemm(p, q) with the given transposes and scale; alpha = 1 is left to the op's default. */
function gemm(ctx: GradContext, p: Value, q: Value, transA: number, transB: number, alpha: number): Value {
  const attrs: Record<string, ReturnType<typeof float> | number> = {};
  if (transA) attrs.transA = 1;
  if (transB) attrs.transB = 1;
  if (alpha !== 1) attrs.alpha = float(alpha);
  return ctx.op('Gemm', [p, q], attrs);
}

export const gemmRules: GradRuleTable = {
  /**
   * Y = alpha · A'·B' + beta · C, with A' = transA ? Aᵀ : A and B' likewise. Each operand gradient is
   * itself one Gemm (the transposes folded into its flags):
   *   dA = alpha · dY·B'ᵀ   (transA = 0)      dA = alpha · B'·dYᵀ   (transA = 1)
   *   dB = alpha · A'ᵀ·dY   (transB = 0)      dB = alpha · dYᵀ·A'   (transB = 1)
   *   dC = beta · dY, summed back over the axes C was broadcast along (C may be a scalar, [N], [M,1]...).
   */
  Gemm: (ctx, n, [dy], needs) => {
    const a = n.inputs[0]!;
    const b = n.inputs[1]!;
    const c = n.inputs[2] ?? null;
    const transA = n.attrInt('transA', 0);
    const transB = n.attrInt('transB', 0);
    const alpha = n.attrFloat('alpha', 1);
    const beta = n.attrFloat('beta', 1);
    const out: Array<Value | null> = [null, null, null];
    if (needs[0]) out[0] = transA ? gemm(ctx, b, dy!, transB, 1, alpha) : gemm(ctx, dy!, b, 0, 1 - transB, alpha);
    if (needs[1]) out[1] = transB ? gemm(ctx, dy!, a, 1, transA, alpha) : gemm(ctx, a, dy!, 1 - transA, 0, alpha);
    if (c && needs[2]) {
      const scaled = beta === 1 ? dy! : ctx.op('Mul', [dy!, ctx.scalar(beta, ctx.elemType(c))]);
      out[2] = ctx.unbroadcast(scaled, n.outputs[0]!, c);
    }
    return out;
  },
};
