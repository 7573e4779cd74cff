/**
 * Conversion between IR tensors and `ort.Tensor`. Both sides hold numeric data as one typed array per
 * tensor, so conversion shares the memory wherever alignment allows and copies only when an IR tensor's
 * bytes are an unaligned view into a model file (Tensor.toArray handles that case).
 */
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';
import { DataType, dataTypeName, parseDataType } from '../ir/dtype.js';
import { Tensor, type TypedArray } from '../ir/tensor.js';

/**
 * IR element type id → the type string `ort.Tensor` uses. These are exactly the types the
 * onnxruntime-node 1.30 binding maps (its backend's `dataTypeStrings`); bfloat16, float8, complex,
 * float4 and 2-bit types have no JS representation there.
 */
const ORT_TYPES: Readonly<Record<number, ort.Tensor.Type>> = Object.freeze({
  [DataType.FLOAT]: 'float32',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.STRING]: 'string',
  [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
  [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64',
  [DataType.UINT4]: 'uint4',
  [DataType.INT4]: 'int4',
});

/** Element type ids that `ort.Tensor` can hold. */
export const ORT_SUPPORTED_DTYPES: readonly number[] = Object.freeze(Object.keys(ORT_TYPES).map(Number));

/**
 * Types `ort.Tensor` can hold but the onnxruntime-node 1.30 native binding cannot exchange: feeding an
 * int4/uint4 tensor fails ("Tensor.type is not supported"), and fetching one aborts the whole process
 * (out-of-memory in OrtValueToNapiValue, measured here). Sessions refuse both before calling ORT.
 */
export const BINDING_UNSUPPORTED_DTYPES: readonly number[] = Object.freeze([DataType.INT4, DataType.UINT4]);

/** True when tensors of this element type can be fed to / read from onnxruntime-node. */
export function isOrtSupportedDtype(dtype: number): boolean {
  return ORT_TYPES[dtype] !== undefined;
}

/** The `ort.Tensor` type string for an IR element type; E_UNSUPPORTED names the type otherwise. */
export function ortTypeOf(dtype: number, what = 'tensor'): ort.Tensor.Type {
  const t = ORT_TYPES[dtype];
  if (t === undefined) {
    throw new FrugalError(
      'E_UNSUPPORTED',
      `${what}: element type ${dataTypeName(dtype)} cannot be passed to or from onnxruntime-node (it supports ${ORT_SUPPORTED_DTYPES.map(dataTypeName).join(', ')}); cast it inside the model (Cast to float32/float16) instead`,
    );
  }
  return t;
}

/** IR element type id for an `ort.Tensor` type string (e.g. 'float16' → FLOAT16). */
export function dtypeOfOrtType(type: string): number {
  const id = parseDataType(type);
  if (id === undefined || ORT_TYPES[id] === undefined) {
    throw new FrugalError('E_UNSUPPORTED', `onnxruntime returned a tensor of type '${type}', which Frugal cannot represent`);
  }
  return id;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/**
 * An `ort.Tensor` over the IR tensor's data. Numeric data is shared, not copied, when aligned; 4-bit
 * types stay packed two per byte (as ORT expects); string elements are decoded as UTF-8.
 */
export function toOrtTensor(t: Tensor): ort.Tensor {
  const what = `tensor '${t.name || '<unnamed>'}'`;
  const type = ortTypeOf(t.dtype, what);
  const dims = [...t.dims];
  switch (t.dtype) {
    case DataType.STRING:
      return new ort.Tensor('string', t.strings().map((s) => utf8Decoder.decode(s)), dims);
    case DataType.INT4:
    case DataType.UINT4: {
      // onnxruntime-common 1.30 checks for Uint8Array for both (its .d.ts says Int8Array for int4).
      return new ort.Tensor(type as 'uint4', t.bytes(), dims);
    }
    default:
      return new ort.Tensor(type as 'float32', t.toArray() as Float32Array, dims);
  }
}

/**
 * An IR tensor over an `ort.Tensor`'s data (shared, not copied). Tensors that live on a device
 * (GPU buffers) must be downloaded first with `await tensor.getData()`.
 */
export function fromOrtTensor(t: ort.Tensor, name = ''): Tensor {
  if (t.location !== 'cpu' && t.location !== 'cpu-pinned') {
    throw new FrugalError('E_UNSUPPORTED', `tensor '${name}' lives on '${t.location}'; download it with getData() or run with preferredOutputLocation 'cpu'`);
  }
  const dtype = dtypeOfOrtType(t.type);
  const dims = t.dims.map(Number);
  const data = t.data;
  switch (dtype) {
    case DataType.STRING:
      return Tensor.fromStrings(dims, (data as string[]).map((s) => utf8Encoder.encode(s)), name);
    case DataType.INT4:
    case DataType.UINT4: {
      const a = data as Uint8Array | Int8Array;
      return Tensor.fromBytes(dtype, dims, new Uint8Array(a.buffer, a.byteOffset, a.byteLength), name);
    }
    case DataType.BOOL: {
      // onnxruntime-common documents bool data as Uint8Array; accept any 1-byte array.
      const a = data as Uint8Array;
      return Tensor.fromBytes(dtype, dims, new Uint8Array(a.buffer, a.byteOffset, a.byteLength), name);
    }
    case DataType.FLOAT16: {
      // Where a runtime has Float16Array, onnxruntime-common may hand one back; keep bit patterns only.
      const a = data as ArrayBufferView;
      if (!(a instanceof Uint16Array)) {
        const bits = new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2);
        return Tensor.fromArray(dtype, dims, bits, name);
      }
      return Tensor.fromArray(dtype, dims, a, name);
    }
    default:
      return Tensor.fromArray(dtype, dims, data as TypedArray, name);
  }
}
