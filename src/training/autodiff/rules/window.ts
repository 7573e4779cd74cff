import { DataType } from '../../../ir/dtype.js';
import type { Node, Value } from '../../../ir/node.js';
import { Tensor } from '../../../ir/tensor.js';
import type { GradContext } from '../context.js';

/**
 * Shared geometry for the window ops (Conv, MaxPool, AveragePool): attributes resolved to explicit
 * numbers (auto_pad turned into pads) so backward ops can be written with auto_pad=NOTSET.
 */
export interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Begin pads per spatial axis. */
  padsBegin: number[];
  /** End pads per spatial axis. */
  padsEnd: number[];
  /** Spatial input sizes (static). */
  inSize: number[];
  /** Spatial output sizes (static). */
  outSize: number[];
}

/** Static spatial dims of `v` (axes 2...), or a clear error naming what is symbolic. */
export function spatialDims(ctx: GradContext, v: Value): number[] {
  const s = ctx.shape(v);
  if (s.length < 3) throw ctx.fail(`'${v.name}' has rank ${s.length}; window ops need [N, C, spatial...]`);
  const sp = s.slice(2);
  if (!sp.every((d): d is number => typeof d === 'number')) {
    throw ctx.fail(`the spatial dims of '${v.name}' must be static for its gradient (got ${JSON.stringify(s)}); give the model's inputs concrete spatial sizes`);
  }
  return sp;
}

/**
 * Resolves a window node's geometry from its attributes, the input `x` and the output `y` (whose
 * inferred spatial size is trusted: it already accounts for ceil_mode). `kernel` comes from the
 * weight for Conv when kernel_shape is absent.
 */
export function resolveWindow(ctx: GradContext, node: Node, x: Value, y: Value, kernel?: number[]): Window {
  const inSize = spatialDims(ctx, x);
  const outSize = spatialDims(ctx, y);
  const sp = inSize.length;
  const k = node.attrInts('kernel_shape') ?? kernel;
  if (!k || k.length !== sp) throw ctx.fail('kernel_shape is missing or does not match the spatial rank');
  const strides = node.attrInts('strides') ?? k.map(() => 1);
  const dilations = node.attrInts('dilations') ?? k.map(() => 1);
  const autoPad = node.attrString('auto_pad', 'NOTSET');
  let pads = node.attrInts('pads') ?? [...k.map(() => 0), ...k.map(() => 0)];
  if (autoPad === 'VALID') pads = pads.map(() => 0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const begin: number[] = [];
    const end: number[] = [];
    for (let i = 0; i < sp; i++) {
      const span = (k[i]! - 1) * dilations[i]! + 1;
      const total = Math.max(0, (Math.ceil(inSize[i]! / strides[i]!) - 1) * strides[i]! + span - inSize[i]!);
      // SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning.
      const small = Math.floor(total / 2);
      begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
      end.push(autoPad === 'SAME_UPPER' ? total - small : small);
    }
    pads = [...begin, ...end];
  }
  return { kernel: k, strides, dilations, padsBegin: pads.slice(0, sp), padsEnd: pads.slice(sp), inSize, outSize };
}

/**
 * The adjoint of a strided window op: ConvTranspose of `dy` (spatial size `w.outSize`) with `weight`,
 * producing exactly `w.inSize`. ConvTranspose's output is stride·(O−1) + span − padsBegin − padsEnd +
 * output_padding; the end pad is raised when a ceil-mode window overhangs the padded input (cropping the
 * overhang) and output_padding covers the rows no window reached. Invariant: 0 ≤ output_padding < stride.
 */
export function transposedWindow(ctx: GradContext, dy: Value, weight: Value, w: Window, group = 1): Value {
  const sp = w.inSize.length;
  const padsEnd: number[] = [];
  const outputPadding: number[] = [];
  for (let i = 0; i < sp; i++) {
    const span = (w.kernel[i]! - 1) * w.dilations[i]! + 1;
    const reach = w.strides[i]! * (w.outSize[i]! - 1) + span - w.padsBegin[i]!;
    const pe = Math.max(w.padsEnd[i]!, reach - w.inSize[i]!);
    padsEnd.push(pe);
    outputPadding.push(w.inSize[i]! - (reach - pe));
  }
  return ctx.op('ConvTranspose', [dy, weight], {
    strides: w.strides,
    dilations: w.dilations,
    pads: [...w.padsBegin, ...padsEnd],
    output_padding: outputPadding,
    group,
  });
}

/** A constant tensor of the given float element type (float/double stored directly, others cast). */
export function floatConst(ctx: GradContext, dims: number[], values: number[], elemType: number): Value {
  const direct = elemType === DataType.DOUBLE ? DataType.DOUBLE : DataType.FLOAT;
  const t = direct === DataType.DOUBLE ? Tensor.fromArray(direct, dims, Float64Array.from(values)) : Tensor.fromArray(direct, dims, Float32Array.from(values));
  const v = ctx.constant(t);
  return direct === elemType ? v : ctx.op('Cast', [v], { to: elemType });
}

/** ReduceMean over `axes` in the opset's form (axes attribute before 18, input from 18). */
export function reduceMean(ctx: GradContext, x: Value, axes: number[], keepdims = 1): Value {
  return ctx.opset < 18 ? ctx.op('ReduceMean', [x], { axes, keepdims }) : ctx.op('ReduceMean', [x, ctx.ints(axes)], { keepdims });
}

/** Zeros shaped like `like`, as a flat 1-D tensor of its element count. */
export function flatZeros(ctx: GradContext, like: Value): Value {
  return ctx.op('Expand', [ctx.scalar(0, ctx.elemType(like)), ctx.op('Reshape', [ctx.op('Size', [like]), ctx.ints([1])])]);
}

