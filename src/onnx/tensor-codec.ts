import { FrugalError } from '../errors.js';
import { byteSizeOf, DataType, dataTypeInfo, dataTypeName, isKnownDataType } from '../ir/dtype.js';
import type { SparseTensor } from '../ir/node.js';
import { Tensor, type TensorExtra } from '../ir/tensor.js';
import { resolveExternalData } from './external-data.js';
import type { Int64, SparseTensorProto, StringStringEntryProto, TensorProto } from './proto-types.js';

/** Which TensorProto field held the data, so an unchanged tensor is re-encoded the same way. */
type Storage = 'raw' | 'float' | 'int32' | 'int64' | 'double' | 'uint64' | 'string';

const STORAGE = Symbol('storage');
interface StoredExtra extends TensorExtra {
  [STORAGE]?: { form: Storage; bytes: Uint8Array | undefined };
}

/** An int64 field as a JS number; sizes beyond 2^53 cannot be addressed anyway. */
export function toNumber(v: Int64 | undefined, what: string): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  throw new FrugalError('E_INVALID_MODEL', `${what}: value ${v} is out of range`);
}

export function entriesOf(list: StringStringEntryProto[] | undefined): Array<[string, string]> {
  return (list ?? []).map((e) => [e.key ?? '', e.value ?? '']);
}

export function entriesTo(list: Array<[string, string]> | undefined): StringStringEntryProto[] {
  return (list ?? []).map(([key, value]) => ({ key, value }));
}

function bytesOf(a: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * TensorProto → IR Tensor. raw_data stays a view of the input buffer; typed fields are repacked into
 * little-endian bytes; external data becomes a lazy, folder-checked reference.
 */
export function tensorFromProto(p: TensorProto, baseDir: string | undefined): Tensor {
  const name = p.name ?? '';
  const dtype = p.dataType ?? 0;
  const dims = p.dims.map((d, i) => {
    const n = toNumber(d, `tensor '${name}' dims[${i}]`);
    if (n < 0) throw new FrugalError('E_INVALID_MODEL', `tensor '${name}': negative dimension ${n}`);
    return n;
  });
  const extra: StoredExtra = {};
  if (p.docString !== undefined) extra.docString = p.docString;
  if (p.metadataProps.length) extra.metadataProps = entriesOf(p.metadataProps);
  if (p.segment) extra.segment = { begin: p.segment.begin, end: p.segment.end };
  if (p.unknownFields?.length) extra.unknownFields = p.unknownFields;
  if (!isKnownDataType(dtype)) {
    throw new FrugalError('E_UNSUPPORTED', `tensor '${name}': element type ${dtype} is not a known ONNX type (1..26)`);
  }
  if (p.dataLocation === 1) {
    const need = dtype === DataType.STRING ? undefined : { bytes: byteSizeOf(dtype, dims.reduce((a, d) => a * d, 1)), type: `${dataTypeName(dtype)}[${dims.join(',')}]` };
    const ref = resolveExternalData(entriesOf(p.externalData), name, baseDir, need);
    return Tensor.fromExternal(dtype, dims, ref, name, extra);
  }
  if (dtype === DataType.STRING) {
    extra[STORAGE] = { form: 'string', bytes: undefined };
    return Tensor.fromStrings(dims, p.stringData, name, extra);
  }
  let form: Storage = 'raw';
  let bytes: Uint8Array;
  if (p.rawData !== undefined) {
    bytes = p.rawData;
  } else {
    ({ form, bytes } = typedFieldBytes(p, dtype, dims, name));
  }
  extra[STORAGE] = { form, bytes };
  return Tensor.fromBytes(dtype, dims, bytes, name, extra);
}

/** Packs the typed field that holds this dtype's data into little-endian bytes. */
function typedFieldBytes(p: TensorProto, dtype: number, dims: number[], name: string): { form: Storage; bytes: Uint8Array } {
  const info = dataTypeInfo(dtype);
  switch (dtype) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return { form: 'float', bytes: bytesOf(p.floatData) };
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return { form: 'double', bytes: bytesOf(p.doubleData) };
    case DataType.INT64:
      return { form: 'int64', bytes: bytesOf(p.int64Data) };
    case DataType.UINT64:
      return { form: 'uint64', bytes: bytesOf(p.uint64Data) };
    case DataType.UINT32: {
      const out = new Uint32Array(p.uint64Data.length);
      for (let i = 0; i < out.length; i++) out[i] = Number(p.uint64Data[i]! & 0xffffffffn);
      return { form: 'uint64', bytes: bytesOf(out) };
    }
    default:
      break;
  }
  if (info.perInt32 === 0) throw new FrugalError('E_UNSUPPORTED', `tensor '${name}': cannot read ${info.short} data from typed fields`);
  // int32_data: one element per entry for 8/16/32-bit types; one packed byte per entry for sub-byte types.
  const src = p.int32Data;
  let count = 1;
  for (const d of dims) count *= d;
  if (info.bits < 8) {
    // Checked before allocating: corrupt dims can ask for gigabytes that the entries do not hold.
    const want = byteSizeOf(dtype, count);
    if (src.length !== want) {
      throw new FrugalError('E_INVALID_MODEL', `tensor '${name}': ${dataTypeName(dtype)}[${dims.join(',')}] needs ${want} packed bytes but int32_data has ${src.length} entries`);
    }
    const out = new Uint8Array(want);
    for (let i = 0; i < Math.min(out.length, src.length); i++) out[i] = src[i]! & 0xff;
    return { form: 'int32', bytes: src.length === out.length ? out : out.subarray(0, src.length) };
  }
  const width = info.bits / 8;
  const out = new Uint8Array(src.length * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < src.length; i++) {
    if (width === 1) out[i] = src[i]! & 0xff;
    else if (width === 2) view.setUint16(i * 2, src[i]! & 0xffff, true);
    else view.setInt32(i * 4, src[i]!, true);
  }
  return { form: 'int32', bytes: out };
}

/**
 * IR Tensor → TensorProto. An unchanged tensor is written in the field it was read from; new or
 * changed data goes to raw_data. `external` overrides with an external-data reference.
 */
export function tensorToProto(t: Tensor, external?: { location: string; offset: number; length: number }): TensorProto {
  const extra = t.extra as StoredExtra;
  const p: TensorProto = {
    dims: [...t.dims],
    dataType: t.dtype,
    floatData: new Float32Array(0),
    int32Data: new Int32Array(0),
    stringData: [],
    int64Data: new BigInt64Array(0),
    externalData: [],
    doubleData: new Float64Array(0),
    uint64Data: new BigUint64Array(0),
    metadataProps: entriesTo(extra.metadataProps),
  };
  if (t.name) p.name = t.name;
  if (extra.docString !== undefined) p.docString = extra.docString;
  if (extra.segment) p.segment = { begin: extra.segment.begin, end: extra.segment.end };
  if (extra.unknownFields) p.unknownFields = extra.unknownFields;
  if (external) {
    p.dataLocation = 1;
    p.externalData = [
      { key: 'location', value: external.location },
      { key: 'offset', value: String(external.offset) },
      { key: 'length', value: String(external.length) },
    ];
    return p;
  }
  if (t.isString) {
    p.stringData = t.strings();
    return p;
  }
  if (t.external && !t.isLoaded) {
    // Still only on disk and not being moved: keep the reference as written.
    p.dataLocation = 1;
    p.externalData = [
      { key: 'location', value: t.external.location },
      { key: 'offset', value: String(t.external.offset) },
      { key: 'length', value: String(t.external.length) },
      ...(t.external.extraEntries ?? []).map(([key, value]) => ({ key, value })),
    ];
    return p;
  }
  const bytes = t.bytes();
  const stored = extra[STORAGE];
  const form = stored && stored.bytes === bytes ? stored.form : 'raw';
  writeForm(p, form, bytes, t.dtype);
  return p;
}

function aligned<T>(bytes: Uint8Array, width: number, make: (buf: ArrayBufferLike, off: number, n: number) => T): T {
  if (bytes.byteOffset % width === 0) return make(bytes.buffer, bytes.byteOffset, bytes.byteLength / width);
  const copy = bytes.slice();
  return make(copy.buffer, 0, copy.byteLength / width);
}

function writeForm(p: TensorProto, form: Storage, bytes: Uint8Array, dtype: number): void {
  switch (form) {
    case 'float':
      p.floatData = aligned(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
      return;
    case 'double':
      p.doubleData = aligned(bytes, 8, (b, o, n) => new Float64Array(b, o, n));
      return;
    case 'int64':
      p.int64Data = aligned(bytes, 8, (b, o, n) => new BigInt64Array(b, o, n));
      return;
    case 'uint64':
      if (dtype === DataType.UINT32) {
        const u32 = aligned(bytes, 4, (b, o, n) => new Uint32Array(b, o, n));
        p.uint64Data = BigUint64Array.from(u32, (x) => BigInt(x));
      } else {
        p.uint64Data = aligned(bytes, 8, (b, o, n) => new BigUint64Array(b, o, n));
      }
      return;
    case 'int32': {
      const info = dataTypeInfo(dtype);
      const width = Math.max(1, info.bits / 8);
      const n = info.bits < 8 ? bytes.length : bytes.length / width;
      const out = new Int32Array(n);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const signed = dtype === DataType.INT8 || dtype === DataType.INT16 || dtype === DataType.INT32;
      for (let i = 0; i < n; i++) {
        if (info.bits < 8 || width === 1) out[i] = signed ? view.getInt8(i) : view.getUint8(i);
        else if (width === 2) out[i] = signed ? view.getInt16(i * 2, true) : view.getUint16(i * 2, true);
        else out[i] = view.getInt32(i * 4, true);
      }
      p.int32Data = out;
      return;
    }
    default:
      p.rawData = bytes;
  }
}

export function sparseFromProto(p: SparseTensorProto, baseDir: string | undefined): SparseTensor {
  if (!p.values || !p.indices) throw new FrugalError('E_INVALID_MODEL', `sparse tensor '${p.values?.name ?? ''}' lacks values or indices`);
  return {
    values: tensorFromProto(p.values, baseDir),
    indices: tensorFromProto(p.indices, baseDir),
    dims: p.dims.map((d, i) => toNumber(d, `sparse tensor dims[${i}]`)),
  };
}

export function sparseToProto(s: SparseTensor): SparseTensorProto {
  return { values: tensorToProto(s.values), indices: tensorToProto(s.indices), dims: [...s.dims] };
}

