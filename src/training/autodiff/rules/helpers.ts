import { DataType } from '../../../ir/dtype.js';
import type { Value } from '../../../ir/node.js';
import { Tensor } from '../../../ir/tensor.js';
import type { GradContext } from '../context.js';

/** Element types that carry gradients (float8 types are storage formats, not trained in). */
const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

export function isFloatType(elemType: number): boolean {
  return FLOAT_TYPES.has(elemType);
}

/** The constant tensor behind a value (an initializer or a Constant node's `value`), if any. */
export function constTensor(v: Value | null | undefined): Tensor | undefined {
  if (!v) return undefined;
  const t = v.initializer ?? (v.producer?.opType === 'Constant' ? v.producer.attr('value') : undefined);
  return t instanceof Tensor ? t : undefined;
}

/** The first element of a constant float32/float64 value, or undefined when computed at run time. */
export function constFloat(v: Value | null | undefined): number | undefined {
  const t = constTensor(v);
  if (!t || (t.dtype !== DataType.FLOAT && t.dtype !== DataType.DOUBLE)) return undefined;
  const a = t.toArray() as Float32Array | Float64Array;
  return a.length ? a[0] : undefined;
}

/** The first element of a constant bool value, or undefined when computed at run time. */
export function constBool(v: Value | null | undefined): boolean | undefined {
  const t = constTensor(v);
  if (!t || t.dtype !== DataType.BOOL) return undefined;
  const a = t.toArray() as Uint8Array;
  return a.length ? a[0] !== 0 : undefined;
}

/** Zeros shaped like `like` (run-time shape). */
export function zerosLike(ctx: GradContext, like: Value): Value {
  return ctx.op('Expand', [ctx.scalar(0, ctx.elemType(like)), ctx.op('Shape', [like])]);
}
