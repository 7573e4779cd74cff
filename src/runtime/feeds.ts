/**
 * Model inputs for runs that have no real data: seeded random feeds that respect each input's element
 * type and shape, and feeds read from `.pb` TensorProto files (the ONNX test-data layout).
 */
import { FrugalError } from '../errors.js';
import { DataType, dataTypeInfo, dataTypeName } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import type { Model } from '../ir/model.js';
import { requiredInputs } from '../ir/summary.js';
import { type Dim, elemTypeOf, formatShape, shapeOf } from '../ir/types.js';
import { float32BitsToBfloat16Bits, float32BitsToFloat16Bits, packInt4 } from '../onnx/packing.js';
import { readTensorFile } from '../onnx/index.js';
import { createRng, type Rng } from '../util/rng.js';

/** What `randomFeeds` needs to know about an input (a session's `TensorInfo` fits). */
export interface FeedSpec {
  name: string;
  elemType: number | undefined;
  /** Undefined means unknown rank, which cannot be fed at random. */
  shape: readonly Dim[] | undefined;
}

export interface RandomFeedOptions {
  seed: number;
  /** Sizes for symbolic dims by name (`{ batch: 4, seq: 128 }`); others (and unnamed ones) get 1. */
  dims?: Record<string, number>;
  /** Float data: standard normal (default) or uniform in [-1, 1). */
  floats?: 'normal' | 'uniform';
  /**
   * Integer data is uniform in [lo, hi), default [0, 10): small and non-negative so that it works as
   * indices, token ids or class labels. Signed 4-bit data is clamped to [-8, 8).
   */
  intRange?: [number, number];
  /** Integer ranges for particular inputs by name; overrides `intRange` and the name conventions. */
  intRanges?: Record<string, [number, number]>;
}

/**
 * Integer inputs whose names follow Hugging Face conventions get ranges that keep the model's meaning:
 * masks are all ones (every token attended; [0, 10) would turn -1e4 masks into +9e4 boosts) and token
 * type ids are 0. Checked in order; the first match wins.
 */
export const INPUT_NAME_RANGES: ReadonlyArray<readonly [RegExp, readonly [number, number]]> = Object.freeze([
  [/mask/i, [1, 2]],
  [/token_type/i, [0, 1]],
] as const);

function intRangeFor(name: string, opts: RandomFeedOptions): [number, number] {
  const given = opts.intRanges?.[name];
  if (given) return given;
  for (const [re, range] of INPUT_NAME_RANGES) if (re.test(name)) return [range[0], range[1]];
  return opts.intRange ?? [0, 10];
}

/** Feed specs for the inputs a caller must provide (graph inputs without an initializer default). */
export function feedSpecsOf(model: Model): FeedSpec[] {
  return requiredInputs(model.graph).map((v) => ({ name: v.name, elemType: elemTypeOf(v.type), shape: shapeOf(v.type) }));
}

/** Concrete dims for a spec: numbers kept, symbolic dims from `dims` (default 1). */
export function concreteShape(spec: FeedSpec, dims: Record<string, number> = {}): number[] {
  if (!spec.shape) {
    throw new FrugalError('E_USAGE', `input '${spec.name}' has unknown rank; give its data explicitly (e.g. with feedsFromFiles) instead of random feeds`);
  }
  return spec.shape.map((d) => {
    if (typeof d === 'number' && d >= 0) return d;
    const n = typeof d === 'string' ? dims[d] : undefined;
    if (n === undefined) return 1;
    if (!Number.isInteger(n) || n < 0) throw new FrugalError('E_USAGE', `dimension '${d}' of input '${spec.name}' must be a non-negative integer, got ${n}`);
    return n;
  });
}

/** A 32-bit FNV-1a hash: each input gets its own stream, independent of the other inputs' order. */
function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Seeded random data for every input: same seed (and options) → same tensors. Floats are N(0,1) (or
 * uniform), integers uniform in `intRange` (default [0, 10); inputs named like masks get ones, see
 * INPUT_NAME_RANGES), bools fair coins, strings short words. Each input's stream depends only on the
 * seed and its name.
 */
export function randomFeeds(inputs: readonly FeedSpec[], opts: RandomFeedOptions): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const spec of inputs) {
    const rng = createRng((opts.seed ^ hashName(spec.name)) | 0);
    out[spec.name] = randomTensor(spec, concreteShape(spec, opts.dims), rng, opts);
  }
  return out;
}

function randomTensor(spec: FeedSpec, dims: number[], rng: Rng, opts: RandomFeedOptions): Tensor {
  const dtype = spec.elemType;
  if (dtype === undefined) throw new FrugalError('E_USAGE', `input '${spec.name}' is not a tensor; random feeds cover tensor inputs only`);
  const n = dims.reduce((a, b) => a * b, 1);
  const [lo, hi] = intRangeFor(spec.name, opts);
  if (!(hi > lo) || !Number.isInteger(lo) || !Number.isInteger(hi)) throw new FrugalError('E_USAGE', `input '${spec.name}': integer range [${lo}, ${hi}) must be non-empty with integer bounds`);
  const float = (): number => (opts.floats === 'uniform' ? rng.uniform(-1, 1) : rng.normal());
  const int = (): number => lo + rng.int(hi - lo);
  const f32 = new Float32Array(1);
  const f32bits = new Uint32Array(f32.buffer);
  switch (dtype) {
    case DataType.FLOAT:
    case DataType.DOUBLE: {
      const a = dtype === DataType.FLOAT ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = float();
      return Tensor.fromArray(dtype, dims, a, spec.name);
    }
    case DataType.FLOAT16:
    case DataType.BFLOAT16: {
      const a = new Uint16Array(n);
      const conv = dtype === DataType.FLOAT16 ? float32BitsToFloat16Bits : float32BitsToBfloat16Bits;
      for (let i = 0; i < n; i++) {
        f32[0] = float();
        a[i] = conv(f32bits[0]!);
      }
      return Tensor.fromArray(dtype, dims, a, spec.name);
    }
    case DataType.BOOL: {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.next() < 0.5 ? 1 : 0;
      return Tensor.fromArray(dtype, dims, a, spec.name);
    }
    case DataType.INT64:
    case DataType.UINT64: {
      const a = dtype === DataType.INT64 ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(clampInt(int(), dtype));
      return Tensor.fromArray(dtype, dims, a, spec.name);
    }
    case DataType.INT4:
    case DataType.UINT4: {
      const v = new Array<number>(n);
      for (let i = 0; i < n; i++) v[i] = clampInt(int(), dtype);
      return Tensor.fromBytes(dtype, dims, packInt4(v), spec.name);
    }
    case DataType.STRING: {
      const enc = new TextEncoder();
      const words: Uint8Array[] = [];
      for (let i = 0; i < n; i++) words.push(enc.encode(randomWord(rng)));
      return Tensor.fromStrings(dims, words, spec.name);
    }
    default: {
      const info = dataTypeInfo(dtype);
      if (info.isFloat || !info.array) {
        throw new FrugalError('E_UNSUPPORTED', `input '${spec.name}': random feeds do not cover ${dataTypeName(dtype)}${formatShape(spec.shape ? [...spec.shape] : undefined)}`);
      }
      const a = new (info.array as Int32ArrayConstructor)(n);
      for (let i = 0; i < n; i++) a[i] = clampInt(int(), dtype);
      return Tensor.fromArray(dtype, dims, a, spec.name);
    }
  }
}

const INT_RANGES: Readonly<Record<number, readonly [number, number]>> = Object.freeze({
  [DataType.INT4]: [-8, 7],
  [DataType.UINT4]: [0, 15],
  [DataType.INT8]: [-128, 127],
  [DataType.UINT8]: [0, 255],
  [DataType.INT16]: [-32768, 32767],
  [DataType.UINT16]: [0, 65535],
  [DataType.INT32]: [-2147483648, 2147483647],
  [DataType.UINT32]: [0, 4294967295],
  [DataType.UINT64]: [0, Number.MAX_SAFE_INTEGER],
});

/** Keeps a user's intRange inside what the type holds (e.g. negative values for unsigned types). */
function clampInt(v: number, dtype: number): number {
  const r = INT_RANGES[dtype];
  return r ? Math.min(r[1], Math.max(r[0], v)) : v;
}

function randomWord(rng: Rng): string {
  const len = 1 + rng.int(8);
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(97 + rng.int(26));
  return s;
}

/** Reads feeds from `.pb` TensorProto files; each tensor takes the given input name. */
export function feedsFromFiles(spec: ReadonlyArray<{ name: string; path: string }>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const { name, path } of spec) {
    if (name in out) throw new FrugalError('E_USAGE', `input '${name}' is given twice (second file: ${path})`);
    out[name] = readTensorFile(path).withName(name);
  }
  return out;
}
