/**
 * Shared int8 quantization arithmetic and bookkeeping: scale/zero-point from a real range, weight
 * quantization per tensor or per channel, rounding half to even (as numpy and ONNX QuantizeLinear do),
 * and the rules that decide which nodes are left alone (exclusions, small tensors), reported in stats.
 *
 * Conventions (ONNX QuantizeLinear): q = saturate(roundHalfEven(x / scale) + zeroPoint),
 * x ≈ (q − zeroPoint) × scale. Every range is widened to include 0 so that 0 is exactly representable
 * (padding, Relu and masked values stay exact).
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import type { Int8WeightScheme } from '../../runtime/cpu-features.js';

/** Rounds to the nearest integer, ties to even (numpy's `rint`, ONNX QuantizeLinear). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends ties up; for exact .5 ties pick the even neighbour.
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
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

/** Quantizes one value (saturating). */
export function quantizeValue(x: number, sz: ScaleZeroPoint, range: QRange): number {
  const q = roundHalfEven(x / sz.scale) + sz.zeroPoint;
  return q < range.qmin ? range.qmin : q > range.qmax ? range.qmax : q;
}

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
  const chanOf = axis === undefined ? () => 0 : (i: number) => Math.floor(i / inner) % channels;
  const lo = new Float64Array(channels).fill(Infinity);
  const hi = new Float64Array(channels).fill(-Infinity);
  for (let i = 0; i < data.length; i++) {
    const c = chanOf(i);
    const v = data[i]!;
    if (v < lo[c]!) lo[c] = v;
    if (v > hi[c]!) hi[c] = v;
  }
  const params: ScaleZeroPoint[] = [];
  for (let c = 0; c < channels; c++) params.push(computeScaleZeroPoint(lo[c] === Infinity ? 0 : lo[c]!, hi[c] === -Infinity ? 0 : hi[c]!, range, symmetric));
  const out = signed ? new Int8Array(data.length) : new Uint8Array(data.length);
  let err = 0;
  let ref = 0;
  for (let i = 0; i < data.length; i++) {
    const p = params[chanOf(i)]!;
    const q = quantizeValue(data[i]!, p, range);
    out[i] = q;
    const d = (q - p.zeroPoint) * p.scale - data[i]!;
    err += d * d;
    ref += data[i]! * data[i]!;
  }
  return {
    dtype: signed ? DataType.INT8 : DataType.UINT8,
    data: out,
    scales: Float32Array.from(params, (p) => p.scale),
    zeroPoints: signed ? Int8Array.from(params, (p) => p.zeroPoint) : Uint8Array.from(params, (p) => p.zeroPoint),
    axis,
    relError: ref > 0 ? Math.sqrt(err / ref) : 0,
  };
}

/** Transposes a row-major [rows, cols] float matrix (Gemm's transB weights become [K, N]). */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/** The float32 data of a constant value, or undefined when it is not a float32 initializer. */
export function floatConstant(v: Value | null | undefined): Float32Array | undefined {
  const t = v?.initializer;
  if (!t || t.dtype !== DataType.FLOAT) return undefined;
  return t.toArray() as Float32Array;
}

/** Which nodes a quantization pass must leave alone, and below what size a weight is not worth it. */
export interface ExclusionOptions {
  /** Node names left in float. */
  excludeNodes?: readonly string[];
  /** Op types left in float (`'Conv'`, `'Gemm'`...). */
  excludeOpTypes?: readonly string[];
  /**
   * Weights with fewer elements stay float. Default: 4096 (a 64×64 matrix) in the dynamic pass, where
   * each quantized node quantizes its activation at run time, which for a small weight costs about as
   * much as the integer product saves (and saves under 12 KB); 0 in the static pass, where a layer left
   * float costs Q/DQ and layout boundaries instead (measured on the MNIST teacher, batch 64: leaving
   * its 288- and 1,280-element layers float made it 1.0× fp32 latency instead of 0.57×).
   */
  minElements?: number;
}

/** The dynamic pass's default `minElements`. */
export const DEFAULT_MIN_ELEMENTS = 4096;

/** Why a node is excluded by name or op type, or undefined. */
export function exclusionReason(node: Node, opts: ExclusionOptions): string | undefined {
  if (opts.excludeNodes?.includes(node.name)) return 'excluded by name';
  if (opts.excludeOpTypes?.includes(node.opType)) return `excluded op type ${node.opType}`;
  return undefined;
}

/** Why a weight is too small to quantize, or undefined. */
export function smallTensorReason(numel: number, opts: ExclusionOptions, defaultMin = DEFAULT_MIN_ELEMENTS): string | undefined {
  const min = opts.minElements ?? defaultMin;
  return numel < min ? `small weight (${numel} < ${min} elements)` : undefined;
}

/** Checks exclusion options: every excluded node name must exist (a typo would silently do nothing). */
export function checkExclusions(model: Model, opts: ExclusionOptions): void {
  const names = new Set([...model.graph.allNodes()].map((n) => n.name));
  const missing = (opts.excludeNodes ?? []).filter((n) => !names.has(n));
  if (missing.length) throw new FrugalError('E_USAGE', `exclude: no node named ${missing.map((n) => `'${n}'`).join(', ')} in the model`);
  const min = opts.minElements;
  if (min !== undefined && !(Number.isInteger(min) && min >= 0)) throw new FrugalError('E_USAGE', `minElements must be a non-negative integer, got ${min}`);
}

/** What a quantization pass did to one node. */
export interface NodeReport {
  node: string;
  opType: string;
  /** What it became (quantized) or why not (skipped). */
  detail: string;
}

/** Stats every quantization pass reports. */
export interface QuantizeStats {
  [key: string]: unknown;
  quantized: NodeReport[];
  skipped: NodeReport[];
  /** Skip reasons with their counts (reasons are grouped by their text before any parenthesis). */
  skippedByReason: Record<string, number>;
  /** The int8 weight scheme used and why it was chosen. */
  weightScheme: Int8WeightScheme;
  weightSchemeReason: string;
  /** Float weight bytes replaced by integer bytes. */
  weightBytesBefore: number;
  weightBytesAfter: number;
}

/** Builds the stats object incrementally. */
export class StatsCollector {
  readonly quantized: NodeReport[] = [];
  readonly skipped: NodeReport[] = [];
  bytesBefore = 0;
  bytesAfter = 0;

  done(node: Node, detail: string): void {
    this.quantized.push({ node: node.name, opType: node.opType, detail });
  }

  skip(node: Node, reason: string): void {
    this.skipped.push({ node: node.name, opType: node.opType, detail: reason });
  }

  finish(scheme: Int8WeightScheme, schemeReason: string, extra: Record<string, unknown> = {}): QuantizeStats {
    const byReason: Record<string, number> = {};
    for (const s of this.skipped) {
      const key = s.detail.replace(/\s*\(.*$/, '');
      byReason[key] = (byReason[key] ?? 0) + 1;
    }
    return {
      quantized: this.quantized,
      skipped: this.skipped,
      skippedByReason: byReason,
      weightScheme: scheme,
      weightSchemeReason: schemeReason,
      weightBytesBefore: this.bytesBefore,
      weightBytesAfter: this.bytesAfter,
      ...extra,
    };
  }
}

/**
 * Makes sure the model imports `domain` at least at `version`. A custom domain (com.microsoft) is added
 * or raised; the default domain is never raised (that would change the meaning of other ops), so an
 * old default opset is an E_UNSUPPORTED error naming what is needed.
 */
export function requireOpset(model: Model, domain: string, version: number, why: string): void {
  const key = domain === 'ai.onnx' ? '' : domain;
  const have = key === '' ? model.opset : model.opsetImports.get(key);
  if (have !== undefined && have >= version) return;
  if (key === '') throw new FrugalError('E_UNSUPPORTED', `${why} needs ONNX opset ${version} or later; the model imports opset ${have}. Convert the model to a newer opset first`);
  model.opsetImports.set(key, version);
}
