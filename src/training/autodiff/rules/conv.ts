import type { Value } from '../../../ir/node.js';
import type { GradRuleTable } from './types.js';
import { resolveWindow, spatialDims, transposedWindow } from './window.js';

/**
 * Conv (1-D, 2-D, 3-D; strides, pads incl. auto_pad, dilations, group incl. depthwise, bias).
 *
 * Y[n, m, o] = Σ_c Σ_k X[n, g(m)·Cg + c, o·s + k·d − pb] · W[m, c, k] + B[m]
 *
 * - dX is the adjoint window op: ConvTranspose(dY, W) with the same strides/dilations/pads/group and
 *   output_padding chosen so the result has X's exact spatial size (see `transposedWindow`).
 * - dW[m, c, k] = Σ_n Σ_o dY[n, m, o] · Xpad[n, c, o·s + k·d] is itself a convolution, with the batch
 *   axis playing the channel role: input X regrouped to [Cg, group·N, S], kernel dYᵀ = [M, N, O], group
 *   `group`, stride d and dilation s (the forward's swapped). Regrouping X so each group's N channels are
 *   contiguous makes all groups one Conv instead of a Split/Conv/Concat per group.
 * - dB = Σ over N and spatial axes of dY.
 */
export const convRules: GradRuleTable = {
  Conv: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const w = n.inputs[1]!;
    const y = n.outputs[0]!;
    const group = n.attrInt('group', 1);
    const ws = ctx.shape(w);
    const kernel = spatialDims(ctx, w);
    const win = resolveWindow(ctx, n, x, y, kernel);
    const sp = kernel.length;
    const spatialAxes = Array.from({ length: sp }, (_, i) => i + 2);
    const swap01 = [1, 0, ...spatialAxes];
    const out: Array<Value | null> = [null, null, null];

    if (ctx.needs(0)) out[0] = transposedWindow(ctx, dy!, w, win, group);

    if (ctx.needs(1)) {
      const cg = ws[1];
      if (typeof cg !== 'number') throw ctx.fail(`the weight '${w.name}' needs a static channel dim`);
      let xr: Value;
      if (group === 1) xr = ctx.op('Transpose', [x], { perm: swap01 });
      else {
        // [N, C, S] → [N, g, Cg, S] → [Cg, g, N, S] → [Cg, g·N, S]: channel j·N + n holds group j, sample n.
        const split = ctx.op('Reshape', [x, ctx.ints([0, group, cg, ...win.inSize])]);
        const t = ctx.op('Transpose', [split], { perm: [2, 1, 0, ...spatialAxes.map((a) => a + 1)] });
        xr = ctx.op('Reshape', [t, ctx.ints([cg, -1, ...win.inSize])]);
      }
      const dyt = ctx.op('Transpose', [dy!], { perm: swap01 });
      // End pad just large enough for the last kernel tap; never negative (then the result is sliced).
      const padsEnd = kernel.map((k, i) => {
        const need = (win.outSize[i]! - 1) * win.strides[i]! + (k - 1) * win.dilations[i]! + 1 - win.inSize[i]! - win.padsBegin[i]!;
        return Math.max(0, need);
      });
      let dw = ctx.op('Conv', [xr, dyt], {
        group,
        strides: win.dilations,
        dilations: win.strides,
        pads: [...win.padsBegin, ...padsEnd],
        kernel_shape: win.outSize,
      });
      const got = kernel.map((k, i) => Math.floor((win.inSize[i]! + win.padsBegin[i]! + padsEnd[i]! - ((win.outSize[i]! - 1) * win.strides[i]! + 1)) / win.dilations[i]!) + 1);
      if (got.some((g, i) => g !== kernel[i])) {
        dw = ctx.op('Slice', [dw, ctx.ints(kernel.map(() => 0)), ctx.ints(kernel), ctx.ints(spatialAxes)]);
      }
      out[1] = ctx.op('Transpose', [dw], { perm: swap01 });
    }

    if (n.inputs[2] && ctx.needs(2)) out[2] = ctx.op('ReduceSum', [dy!, ctx.ints([0, ...spatialAxes])], { keepdims: 0 });
    return out;
  },
};
