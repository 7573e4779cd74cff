/**
 * int8 quantization arithmetic: scale/zero-point from a real range, weight quantization per tensor or
 * per channel, rounding half to even (as numpy and ONNX QuantizeLinear do).
 *
 * Conventions (ONNX QuantizeLinear): q = saturate(roundHalfEven(x / scale) + zeroPoint),
 * x ≈ (q − zeroPoint) × scale. Every range is widened to include 0 so that 0 is exactly representable
 * (padding, Relu and masked values stay exact).
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Int8WeightScheme } from '../../runtime/cpu-features.js';

/** Rounds to the nearest integer, ties to even (numpy's `rint`, ONNX QuantizeLinear). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends ties up (toward +∞), so x is a tie exactly when r − x is 0.5 (the subtraction is
  // exact: both are within 0.5 of each other and share x's ulp). For a tie, pick the even neighbour.
  // Ties only exist below 2^52, where r is an integer whose parity `r & 1` keeps (ToInt32 is mod 2^32).
  // NaN and ±Infinity fail the tie test and pass through, as -0 does (its parity bit is 0).
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

export type QuantType = 'int8' | 'uint8';

/** The integer range used for a quantized tensor. */
export interface QRange {
  qmin: number;
  qmax: number;
}

/**
 * The integer range for `type`. Symmetric int8 uses [−127, 127] (so ±scale × 127 both exist and the
 * zero point is 0); `reduceRange` narrows to 7 bits ([−64, 64] symmetric, [0, 127] uint8), which keeps
 * two u8×s8 products under int16's limit (see cpu-features.ts).
 */
export function quantRange(type: QuantType, opts: { symmetric?: boolean; reduceRange?: boolean } = {}): QRange {
  if (type === 'int8') {
    if (opts.reduceRange) return opts.symmetric ? { qmin: -64, qmax: 64 } : { qmin: -64, qmax: 63 };
    return opts.symmetric ? { qmin: -127, qmax: 127 } : { qmin: -128, qmax: 127 };
  }
  return opts.reduceRange ? { qmin: 0, qmax: 127 } : { qmin: 0, qmax: 255 };
}

export interface ScaleZeroPoint {
  scale: number;
  zeroPoint: number;
}

/**
 * Scale and zero point mapping [rmin, rmax] (widened to include 0) onto [qmin, qmax]. Symmetric puts
 * 0 at the middle of the integer range (0 for int8, 128 for uint8) and uses max(|rmin|, |rmax|).
 * A zero range gets scale 1, so that dequantization gives exact zeros instead of dividing by zero.
 * The scale is rounded to float32, as it will be stored.
 */
export function computeScaleZeroPoint(rmin: number, rmax: number, range: QRange, symmetric: boolean): ScaleZeroPoint {
  if (!Number.isFinite(rmin) || !Number.isFinite(rmax)) throw new FrugalError('E_DATA', `cannot quantize a range with non-finite bounds [${rmin}, ${rmax}]`);
  let lo = Math.min(rmin, 0);
  let hi = Math.max(rmax, 0);
  const { qmin, qmax } = range;
  if (symmetric) {
    const a = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -a;
    hi = a;
  }
  if (hi === lo) return { scale: 1, zeroPoint: symmetric ? Math.round((qmin + qmax) / 2) : qmin };
  const scale = Math.fround((hi - lo) / (qmax - qmin));
  if (symmetric) return { scale, zeroPoint: Math.ceil((qmin + qmax) / 2) };
  const zp = roundHalfEven(qmin - lo / scale);
  return { scale, zeroPoint: Math.min(qmax, Math.max(qmin, zp)) };
}

/**
 * 1.5 × 2^52. For |v| < 2^51, `(v + ROUNDING_MAGIC) − ROUNDING_MAGIC` is v rounded to an integer ties to
 * even: the sum lies in [2^52, 2^53), where doubles are exactly the integers, so the addition itself rounds
 * (IEEE default: to nearest, ties to even; the magic number is even, so the tie parity is v's own), and the
 * subtraction is exact. Two additions instead of `Math.round` (which V8 compiles to a slow path here:
 * 10 ns per element, measured) is what makes quantizing a 110M-parameter model take a fraction of a second.
 * ±Infinity and NaN pass through unchanged. Callers must make sure a finite v is below 2^51: in the
 * quantizers v = x / scale with the scale derived from the data's own range, so a finite |v| stays within a
 * small multiple of the integer range (even when the scale is a float32 denormal).
 */
export const ROUNDING_MAGIC = 6755399441055744;

/** How a weight tensor is quantized. */
export interface WeightQuantOptions {
  /** Int8 weight scheme (see cpu-features.ts): 's8', 's8-reduced' (7-bit) or 'u8' (asymmetric uint8). */
  scheme: Int8WeightScheme;
  /** Per-channel along this axis (one scale and zero point per index); undefined: per tensor. */
  axis?: number;
  /** Symmetric range (zero point at the middle: 0 for int8, 128 for uint8). Default: int8 yes, uint8 no. */
  symmetric?: boolean;
}

export interface QuantizedWeight {
  dtype: typeof DataType.INT8 | typeof DataType.UINT8;
  data: Int8Array | Uint8Array;
  /** One scale (per tensor) or dims[axis] scales. */
  scales: Float32Array;
  zeroPoints: Int8Array | Uint8Array;
  axis: number | undefined;
  /** Root-mean-square error of dequantized vs original, relative to the RMS of the original. */
  relError: number;
}

/**
 * Quantizes a float weight. 's8' and 's8-reduced' are symmetric int8 (zero point 0, which integer
 * kernels handle fastest); 'u8' is asymmetric uint8.
 */
export function quantizeWeight(data: Float32Array, dims: readonly number[], opts: WeightQuantOptions): QuantizedWeight {
  const signed = opts.scheme !== 'u8';
  const symmetric = opts.symmetric ?? signed;
  const range = quantRange(signed ? 'int8' : 'uint8', { symmetric, reduceRange: opts.scheme === 's8-reduced' });
  const axis = opts.axis === undefined ? undefined : opts.axis < 0 ? opts.axis + dims.length : opts.axis;
  if (axis !== undefined && (axis < 0 || axis >= dims.length)) throw new FrugalError('E_USAGE', `per-channel axis ${opts.axis} is out of range for a weight of shape [${dims.join(',')}]`);
  const channels = axis === undefined ? 1 : dims[axis]!;
  let inner = 1;
  if (axis !== undefined) for (let d = axis + 1; d < dims.length; d++) inner *= dims[d]!;
  // Element i belongs to channel floor(i / inner) % channels: the data is `outer` repetitions of
  // `channels` runs of `inner` elements. Walking it as those nested runs visits i in increasing order
  // (so the error sums add up in the same order as a flat loop) without a division per element.
  if (axis === undefined) inner = data.length;
  const outer = channels * inner === 0 ? 0 : Math.round(data.length / (channels * inner));
  const lo = new Float64Array(channels).fill(Infinity);
  const hi = new Float64Array(channels).fill(-Infinity);
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      let l = lo[c]!;
      let h = hi[c]!;
      for (const end = i + inner; i < end; i++) {
        const v = data[i]!;
        if (v < l) l = v;
        if (v > h) h = v;
      }
      lo[c] = l;
      hi[c] = h;
    }
  }
  const params: ScaleZeroPoint[] = [];
  for (let c = 0; c < channels; c++) params.push(computeScaleZeroPoint(lo[c] === Infinity ? 0 : lo[c]!, hi[c] === -Infinity ? 0 : hi[c]!, range, symmetric));
  const out = signed ? new Int8Array(data.length) : new Uint8Array(data.length);
  const sums = { err: 0, ref: 0 };
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++, i += inner) quantizeRun(data, out, i, i + inner, params[c]!, range, sums);
  }
  return {
    dtype: signed ? DataType.INT8 : DataType.UINT8,
    data: out,
    scales: Float32Array.from(params, (p) => p.scale),
    zeroPoints: signed ? Int8Array.from(params, (p) => p.zeroPoint) : Uint8Array.from(params, (p) => p.zeroPoint),
    axis,
    relError: sums.ref > 0 ? Math.sqrt(sums.err / sums.ref) : 0,
  };
}

/**
 * Quantizes data[start..end) with one scale and zero point, writing `out` and adding the squared
 * dequantization error and squared value to `sums`: division by the scale, ties to even, saturation, with
 * the rounding inlined. This loop runs once per weight element, and a call per element made quantizing a
 * 110M-parameter model take seconds.
 */
function quantizeRun(data: Float32Array, out: Int8Array | Uint8Array, start: number, end: number, p: ScaleZeroPoint, range: QRange, sums: { err: number; ref: number }): void {
  const { scale, zeroPoint } = p;
  const { qmin, qmax } = range;
  let err = sums.err;
  let ref = sums.ref;
  for (let i = start; i < end; i++) {
    const x = data[i]!;
    // roundHalfEven(x / scale), inlined (see ROUNDING_MAGIC; |x| ≤ the range the scale was made from).
    let q = x / scale + ROUNDING_MAGIC - ROUNDING_MAGIC + zeroPoint;
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    out[i] = q;
    const d = (q - zeroPoint) * scale - x;
    err += d * d;
    ref += x * x;
  }
  sums.err = err;
  sums.ref = ref;
}
