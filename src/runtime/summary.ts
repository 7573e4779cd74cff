/**
 * One-line statistics of an output tensor, for `frugal run` and for spotting NaNs after a pass.
 */
import { DataType, dataTypeInfo, dataTypeName } from '../ir/dtype.js';
import type { Tensor } from '../ir/tensor.js';
import { bfloat16BitsToFloat32Array, float16BitsToFloat32Array, unpackInt4 } from '../onnx/packing.js';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  numel: number;
  /** Over non-NaN elements (±Infinity included); NaN when there are none or the type is not numeric. */
  min: number;
  max: number;
  mean: number;
  nanCount: number;
  infCount: number;
}

/** Numeric values of a tensor as float64, decoding float16/bfloat16/int4; undefined for other types. */
export function numericValues(t: Tensor): ArrayLike<number | bigint> | undefined {
  switch (t.dtype) {
    case DataType.FLOAT16:
      return float16BitsToFloat32Array(t.toArray() as Uint16Array);
    case DataType.BFLOAT16:
      return bfloat16BitsToFloat32Array(t.toArray() as Uint16Array);
    case DataType.INT4:
    case DataType.UINT4:
      return unpackInt4(t.bytes(), t.numel, t.dtype === DataType.INT4);
    case DataType.STRING:
    case DataType.COMPLEX64:
    case DataType.COMPLEX128:
      return undefined;
    default: {
      const info = dataTypeInfo(t.dtype);
      // float8 types are stored as bytes but their bytes are not their values.
      if (!info.array || (info.isFloat && info.bits === 8)) return undefined;
      return t.toArray();
    }
  }
}

/** Shape, dtype, min, max, mean and NaN/Inf counts of a tensor. */
export function outputSummary(t: Tensor): TensorSummary {
  const base = { name: t.name, dtype: dataTypeName(t.dtype), shape: [...t.dims], numel: t.numel };
  const values = numericValues(t);
  if (!values) return { ...base, min: NaN, max: NaN, mean: NaN, nanCount: 0, infCount: 0 };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let count = 0;
  let nanCount = 0;
  let infCount = 0;
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (Number.isNaN(v)) {
      nanCount++;
      continue;
    }
    if (!Number.isFinite(v)) infCount++;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    count++;
  }
  return count ? { ...base, min, max, mean: sum / count, nanCount, infCount } : { ...base, min: NaN, max: NaN, mean: NaN, nanCount, infCount };
}
