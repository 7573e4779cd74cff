import { type AttributeValue, type TypedAttribute, type Value, typed } from '../../../ir/node.js';
import { DataType } from '../../../ir/dtype.js';
import type { GradRuleTable } from './types.js';
import type { GradContext } from '../context.js';
import { flatZeros, floatConst, resolveWindow, transposedWindow, type Window } from './window.js';

/**
 * Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
 *
 * MaxPool routes each output gradient to the input element its window picked, read from MaxPool's
 * Indices output. ORT (like the ONNX spec) flattens indices over the whole N·C·H·W input in row-major
 * order (storage_order 0) and ignores padding, so the gradient is a ScatterElements of flat dY into a
 * flat zero tensor of X's size. Overlapping windows may pick the same element several times; those
 * contributions must add up, which needs ScatterElements' reduction='add' (opset ≥ 16). Without
 * overlap, indices are unique and plain ScatterElements (opset 13) is exact.
 *
 * Fast path (`tilingMaxPoolGrad`): when the windows tile the input exactly (kernel = stride, no padding,
 * no dilation, sizes divisible; the zoo CNN's 2×2/2 pools) the rule needs neither Indices nor
 * ScatterElements, which ORT runs slowly (MaxPool with an Indices output leaves MLAS's fast pooling
 * kernel, and ScatterElements is single-threaded). Tie rule on that path: the elements equal to their
 * window's maximum share dY equally (a subgradient; Σ dX = Σ dY per window, and without ties it is
 * exactly the Indices rule). After a ReLU the common tie is an all-zero window, whose gradient ReLU's own
 * rule then zeroes either way.
 *
 * NOTE: otherwise, when the forward MaxPool has no Indices output, the rule ADDS one to the forward node (in the
 * training graph only) rather than recomputing the pool. With storage_order=1 (column-major indices)
 * a second MaxPool with storage_order 0 is emitted in the backward pass instead.
 */
export const poolRules: GradRuleTable = {
  MaxPool: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const y = n.outputs[0]!;
    const win = resolveWindow(ctx, n, x, y);
    if (n.attrInt('storage_order', 0) === 0 && isTiling(win)) return [tilingMaxPoolGrad(ctx, x, y, dy!, win)];
    const overlap = win.kernel.some((k, i) => win.strides[i]! < (k - 1) * win.dilations[i]! + 1);
    if (overlap && ctx.opset < 16) {
      throw ctx.fail(`overlapping windows need ScatterElements with reduction='add' (opset ≥ 16; this model imports ${ctx.opset}); re-export the model with opset 16 or newer`);
    }
    let indices: Value;
    if (n.attrInt('storage_order', 0) === 0) {
      let out = n.outputs[1] ?? null;
      if (!out) {
        out = ctx.graph.createValue(`${y.name}_indices`);
        n.setOutput(1, out);
      }
      indices = out;
    } else {
      const attrs: Record<string, AttributeValue | TypedAttribute> = {};
      for (const a of n.attributes.values()) attrs[a.name] = typed(a.type, a.value as AttributeValue);
      attrs.storage_order = 0;
      indices = ctx.ops('MaxPool', [x], 2, attrs)[1]!;
    }
    const scatter = ctx.op(
      'ScatterElements',
      [flatZeros(ctx, x), ctx.op('Reshape', [indices, ctx.ints([-1])]), ctx.op('Reshape', [dy!, ctx.ints([-1])])],
      overlap ? { axis: 0, reduction: 'add' } : { axis: 0 },
    );
    return [ctx.op('Reshape', [scatter, ctx.op('Shape', [x])])];
  },

  /**
   * AveragePool is linear: Y = A·X with A summing each window and dividing by its element count. dX = Aᵀ·dY
   * is dY scaled by 1/count per output position, then spread over each window by a ConvTranspose with an
   * all-ones kernel (batch and channels folded into the batch axis so one 1-channel kernel serves all).
   * count follows ORT: with count_include_pad=1 the window is clipped to the padded input (a ceil_mode
   * window overhanging the end pad counts only up to it); with 0 it is clipped to the real input.
   */
  AveragePool: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const y = n.outputs[0]!;
    const win = resolveWindow(ctx, n, x, y);
    if (win.dilations.some((d) => d !== 1)) throw ctx.fail('dilated AveragePool (opset 19) has no gradient rule yet');
    const includePad = n.attrInt('count_include_pad', 0) === 1;
    const et = ctx.elemType(x);
    // Per-axis counts; a box window's element count is their product.
    const perAxis = win.outSize.map((o, i) =>
      Array.from({ length: o }, (_, j) => {
        const start = j * win.strides[i]! - win.padsBegin[i]!;
        const end = start + win.kernel[i]!;
        const lo = includePad ? start : Math.max(start, 0);
        const hi = includePad ? Math.min(end, win.inSize[i]! + win.padsEnd[i]!) : Math.min(end, win.inSize[i]!);
        return hi - lo;
      }),
    );
    let inv: number[] = [1];
    for (const counts of perAxis) inv = inv.flatMap((a) => counts.map((c) => a / c));
    const scaled = ctx.op('Mul', [dy!, floatConst(ctx, win.outSize, inv, et)]);
    const folded = ctx.op('Reshape', [scaled, ctx.ints([-1, 1, ...win.outSize])]);
    const ones = floatConst(ctx, [1, 1, ...win.kernel], new Array<number>(win.kernel.reduce((a, b) => a * b, 1)).fill(1), et);
    const dx = transposedWindow(ctx, folded, ones, win);
    return [ctx.op('Reshape', [dx, ctx.op('Shape', [x])])];
  },

  GlobalAveragePool: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const et = ctx.elemType(x);
    const count = ctx.op('Div', [ctx.op('Cast', [ctx.op('Size', [x])], { to: et }), ctx.op('Cast', [ctx.op('Size', [n.outputs[0]!])], { to: et })]);
    return [ctx.op('Expand', [ctx.op('Div', [dy!, count]), ctx.op('Shape', [x])])];
  },

  /** dY goes to the maximal elements; ties share it equally (a subgradient that keeps Σ dX = Σ dY). */
  GlobalMaxPool: (ctx, n, [dy]) => {
    const x = n.inputs[0]!;
    const et = ctx.elemType(x);
    const mask = ctx.op('Cast', [ctx.op('Equal', [x, n.outputs[0]!])], { to: et });
    const spatial = Array.from({ length: ctx.rank(x) - 2 }, (_, i) => i + 2);
    const ties = ctx.op('ReduceSum', [mask, ctx.ints(spatial)], { keepdims: 1 });
    return [ctx.op('Mul', [mask, ctx.op('Div', [dy!, ties])])];
  },
};


/** Windows that tile the input exactly: kernel = stride, no padding or dilation, sizes divisible. */
function isTiling(w: Window): boolean {
  return w.kernel.every((k, i) => w.strides[i] === k && w.dilations[i] === 1 && w.padsBegin[i] === 0 && w.padsEnd[i] === 0 && w.inSize[i] === k * w.outSize[i]!);
}

/**
 * dX of a tiling MaxPool from Y alone: X viewed as [N, C, O1, k1, O2, k2, ...] (a free reshape), Y as
 * [N, C, O1, 1, O2, 1, ...]; mask = (X == Y), count = Σ_window mask, dX = mask · dY / count.
 */
function tilingMaxPoolGrad(ctx: GradContext, x: Value, y: Value, dy: Value, w: Window): Value {
  const et = ctx.elemType(x);
  const b = w.kernel[0]!;
  if (w.kernel.length === 2 && w.kernel[1] === b) {
    // Square 2-D windows: SpaceToDepth puts tap (i, j) of every window in channel block i·b + j, so the
    // broadcasts run over an outer axis (ORT broadcasts a size-1 inner axis element by element, which
    // measured ~5× slower).
    const taps = ctx.op('Reshape', [ctx.op('SpaceToDepth', [x], { blocksize: b }), ctx.ints([0, b * b, -1, ...w.outSize])]);
    const mask = ctx.op('Cast', [ctx.op('Equal', [taps, ctx.op('Unsqueeze', [y, ctx.ints([1])])])], { to: et });
    const count = ctx.op('ReduceSum', [mask, ctx.ints([1])], { keepdims: 1 });
    const share = ctx.op('Div', [ctx.op('Unsqueeze', [dy, ctx.ints([1])]), count]);
    const prod = ctx.op('Mul', [mask, share]); // [N, b², C, O1, O2]
    if (et === DataType.DOUBLE) {
      // ORT has no double ConvTranspose: DepthToSpace (DCR, SpaceToDepth's inverse) puts the taps back.
      return ctx.op('DepthToSpace', [ctx.op('Reshape', [prod, ctx.ints([0, -1, ...w.outSize])])], { blocksize: b, mode: 'DCR' });
    }
    // Putting the taps back with ORT's DepthToSpace costs ~1.4 ms on the zoo CNN's first pool at batch 64.
    // Faster (measured: the CNN's whole step ~8% less): taps first (a transpose of whole C·O1·O2 blocks),
    // then every (n, c) plane stacked into ONE image of N·C·O1 rows (windows never straddle planes, so
    // the stacking commutes with the upsampling), and a ConvTranspose with a one-hot b×b kernel and
    // stride b writes tap i·b + j of every window at offset (i, j): one GEMM, not one per plane.
    const tapsFirst = ctx.op('Transpose', [ctx.op('Reshape', [prod, ctx.ints([0, b * b, -1])])], { perm: [1, 0, 2] }); // [b², N, C·O1·O2]
    const folded = ctx.op('Reshape', [tapsFirst, ctx.ints([1, b * b, -1, w.outSize[1]!])]); // one image [1, b², N·C·O1, O2]
    const oneHot = Array.from({ length: b * b * b * b }, (_, i) => (Math.floor(i / (b * b)) === i % (b * b) ? 1 : 0));
    const up = ctx.op('ConvTranspose', [folded, floatConst(ctx, [b * b, 1, b, b], oneHot, et)], { strides: [b, b] });
    return ctx.op('Reshape', [up, ctx.op('Shape', [x])]);
  }
  const windowed = w.outSize.flatMap((o, i) => [o, w.kernel[i]!]);
  const pooled = w.outSize.flatMap((o) => [o, 1]);
  const windowAxes = w.outSize.map((_, i) => 3 + 2 * i);
  const xw = ctx.op('Reshape', [x, ctx.ints([0, 0, ...windowed])]);
  const mask = ctx.op('Cast', [ctx.op('Equal', [xw, ctx.op('Reshape', [y, ctx.ints([0, 0, ...pooled])])])], { to: et });
  const count = ctx.op('ReduceSum', [mask, ctx.ints(windowAxes)], { keepdims: 1 });
  const share = ctx.op('Div', [ctx.op('Reshape', [dy, ctx.ints([0, 0, ...pooled])]), count]);
  return ctx.op('Reshape', [ctx.op('Mul', [mask, share]), ctx.op('Shape', [x])]);
}
