import type { Value } from '../../../ir/node.js';
import type { GradContext } from '../context.js';
import type { GradRuleTable } from './types.js';
import { resolveWindow, spatialDims, transposedWindow, type Window } from './window.js';

/**
 * Conv (1-D, 2-D, 3-D; strides, pads incl. auto_pad, dilations, group incl. depthwise, bias).
 *
 * Y[n, m, o] = Σ_c Σ_k X[n, g(m)·Cg + c, o·s + k·d − pb] · W[m, c, k] + B[m]
 *
 * - dX is the adjoint window op: ConvTranspose(dY, W) with the same strides/dilations/pads/group and
 *   output_padding chosen so the result has X's exact spatial size (see `transposedWindow`).
 * - dW[m, c, k] = Σ_n Σ_o dY[n, m, o] · Xpad[n, c, o·s + k·d]. With group = 1 it is one matrix product
 *   over unfolded patches (`im2colWeightGrad`): measured in ORT on the zoo CNN it is several times faster
 *   than the convolution form below, which ORT runs as a Conv with a huge (Ho×Wo) kernel. Grouped convs
 *   keep the convolution form: dW is itself a convolution, with the batch
 *   axis playing the channel role: input X regrouped to [Cg, group·N, S], kernel dYᵀ = [M, N, O], group
 *   `group`, stride d and dilation s (the forward's swapped). Regrouping X so each group's N channels are
 *   contiguous makes all groups one Conv instead of a Split/Conv/Concat per group.
 * - dB = Σ over N and spatial axes of dY.
 */
export const convRules: GradRuleTable = {
  Conv: (ctx, n, [dy], needs) => {
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

    if (needs[0]) out[0] = transposedWindow(ctx, dy!, w, win, group);

    if (needs[1] && group === 1 && typeof ws[1] === 'number') out[1] = im2colWeightGrad(ctx, x, dy!, ws[1], win);
    else if (needs[1]) {
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

    if (n.inputs[2] && needs[2]) out[2] = ctx.op('ReduceSum', [dy!, ctx.ints([0, ...spatialAxes])], { keepdims: 0 });
    return out;
  },
};

/** Input channels from which per-tap Gemms beat one Gemm over stacked patches (measured at C = 1 and 16). */
const PER_TAP_MIN_CHANNELS = 8;

/**
 * dW of a group-1 Conv as matrix products: P[c·K + k, n·O + o] = Xpad[c, n, o·s + k·d] built from K strided
 * Slices of the padded, channel-first input (one per kernel tap, K = Π kernel), and
 * dW[m, c·K + k] = Σ_{n,o} dY[m, n·O + o] · P[c·K + k, n·O + o], i.e. Gemm(dYᵀ-ish [M, N·O], P, transB).
 * Tap order is row-major over the kernel axes, matching W's [M, C, k1, k2, ...] layout.
 */
function im2colWeightGrad(ctx: GradContext, x: Value, dy: Value, cin: number, win: Window): Value {
  const sp = win.kernel.length;
  const spatialAxes = Array.from({ length: sp }, (_, i) => i + 2);
  const swap01 = [1, 0, ...spatialAxes];
  // Channel-first [C, N, S]: slices of it reshape straight into P's rows.
  let xt = ctx.op('Transpose', [x], { perm: swap01 });
  const reach = win.kernel.map((k, i) => (win.outSize[i]! - 1) * win.strides[i]! + (k - 1) * win.dilations[i]! + 1);
  const padsEnd = reach.map((r, i) => Math.max(0, r - win.inSize[i]! - win.padsBegin[i]!));
  if (win.padsBegin.some((p) => p > 0) || padsEnd.some((p) => p > 0)) {
    const pads = [0, 0, ...win.padsBegin, 0, 0, ...padsEnd];
    xt = ctx.opset >= 11 ? ctx.op('Pad', [xt, ctx.ints(pads)]) : ctx.op('Pad', [xt], { pads });
  }
  const taps: number[][] = [[]];
  for (const k of win.kernel) taps.splice(0, taps.length, ...taps.flatMap((t) => Array.from({ length: k }, (_, j) => [...t, j])));
  const slices = taps.map((t) => {
    const starts = t.map((j, i) => j * win.dilations[i]!);
    const ends = starts.map((st, i) => st + (win.outSize[i]! - 1) * win.strides[i]! + 1);
    return ctx.op('Slice', [xt, ctx.ints(starts), ctx.ints(ends), ctx.ints(spatialAxes), ctx.ints(win.strides)]);
  });
  // dY [N, M, O...] → [M, N·O]
  const dyt = ctx.op('Reshape', [ctx.op('Transpose', [dy], { perm: swap01 }), ctx.ints([0, -1])]);
  let dw: Value;
  if (cin >= PER_TAP_MIN_CHANNELS) {
    // One Gemm per tap, [M, N·O]·[C, N·O]ᵀ → [M, C], stacked on a last axis: skips copying all the
    // patches into one buffer (measured 2.7 vs 3.6–5.1 ms for the zoo CNN's conv2, C = 16).
    const per = slices.map((sl) => ctx.op('Unsqueeze', [ctx.op('Gemm', [dyt, ctx.op('Reshape', [sl, ctx.ints([cin, -1])])], { transB: 1 }), ctx.ints([2])]));
    dw = per.length === 1 ? per[0]! : ctx.op('Concat', per, { axis: 2 });
  } else {
    // Few channels: per-tap products are matrix-vector shaped and slow (3.9 vs 1.2 ms at C = 1); stack
    // the patches [C, K, N, O...] → [C·K, N·O] and do one Gemm.
    const cols = slices.map((sl) => ctx.op('Unsqueeze', [sl, ctx.ints([1])]));
    const stacked = cols.length === 1 ? cols[0]! : ctx.op('Concat', cols, { axis: 1 });
    dw = ctx.op('Gemm', [dyt, ctx.op('Reshape', [stacked, ctx.ints([cin * taps.length, -1])])], { transB: 1 });
  }
  return ctx.op('Reshape', [dw, ctx.ints([0, cin, ...win.kernel])]);
}
