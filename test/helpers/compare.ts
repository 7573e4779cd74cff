import { DataType } from '../../src/ir/dtype.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { bfloat16BitsToFloat32Array, float16BitsToFloat32Array } from '../../src/onnx/packing.js';

/** Numeric view of a tensor (floats decoded), or undefined for non-numeric data. */
function numbers(t: Tensor): ArrayLike<number | bigint> | undefined {
  if (t.dtype === DataType.FLOAT16) return float16BitsToFloat32Array(t.toArray() as Uint16Array);
  if (t.dtype === DataType.BFLOAT16) return bfloat16BitsToFloat32Array(t.toArray() as Uint16Array);
  try {
    return t.toArray() as ArrayLike<number | bigint>;
  } catch {
    return undefined;
  }
}

/**
 * numpy-style allclose (|a - b| <= atol + rtol·|b|, NaN equal to NaN) for float types, exact equality
 * for everything else. Shapes and element types must match.
 */
export function closeEnough(a: Tensor, b: Tensor, rtol = 1e-3, atol = 1e-5): boolean {
  if (a.dtype !== b.dtype || a.dims.join(',') !== b.dims.join(',')) return false;
  if (a.isString) return a.strings().every((s, i) => Buffer.compare(Buffer.from(s), Buffer.from(b.strings()[i]!)) === 0);
  const x = numbers(a);
  const y = numbers(b);
  if (!x || !y) return Buffer.compare(Buffer.from(a.bytes()), Buffer.from(b.bytes())) === 0;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (typeof p === 'bigint' || typeof q === 'bigint') {
      if (p !== q) return false;
      continue;
    }
    if (Number.isNaN(p) && Number.isNaN(q)) continue;
    if (p === q) continue;
    if (!(Math.abs(p - q) <= atol + rtol * Math.abs(q))) return false;
  }
  return true;
}

/** Largest relative error max|a-b| / max|b| over two float tensors. */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}
