/**
 * ONNX element types (TensorProto.DataType) as a table: name, bits per element, and the typed array
 * that holds one element per slot where there is one. Sub-byte types (int4, uint4, float4e2m1: 4 bits;
 * int2, uint2: 2 bits) are packed little-end first in raw data, as the ONNX spec says.
 */
import { FrugalError } from '../errors.js';

export const DataType = Object.freeze({
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
  UINT2: 25,
  INT2: 26,
} as const);
export type DataTypeId = number;

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

export interface DataTypeInfo {
  readonly id: number;
  /** The spec's enum name, e.g. `FLOAT16`. */
  readonly name: string;
  /** The short name ONNX Runtime and numpy use, e.g. `float16`, `int4`. */
  readonly short: string;
  /** Bits per element (0 for STRING). */
  readonly bits: number;
  /** Typed array holding one element per slot, when one exists (fp16/bf16/fp8 use their bit patterns). */
  readonly array?: TypedArrayCtor;
  readonly isFloat: boolean;
  /**
   * For tensors stored in TensorProto.int32_data: how many elements one int32 entry holds
   * (1 for 8/16-bit types; 2 for 4-bit types; 4 for 2-bit types). 0 where int32_data is not used.
   */
  readonly perInt32: number;
}

const T = (
  id: number,
  name: string,
  short: string,
  bits: number,
  array: TypedArrayCtor | undefined,
  isFloat: boolean,
  perInt32: number,
): DataTypeInfo => Object.freeze({ id, name, short, bits, array, isFloat, perInt32 });

const TABLE: readonly DataTypeInfo[] = Object.freeze([
  T(0, 'UNDEFINED', 'undefined', 0, undefined, false, 0),
  T(1, 'FLOAT', 'float32', 32, Float32Array, true, 0),
  T(2, 'UINT8', 'uint8', 8, Uint8Array, false, 1),
  T(3, 'INT8', 'int8', 8, Int8Array, false, 1),
  T(4, 'UINT16', 'uint16', 16, Uint16Array, false, 1),
  T(5, 'INT16', 'int16', 16, Int16Array, false, 1),
  T(6, 'INT32', 'int32', 32, Int32Array, false, 1),
  T(7, 'INT64', 'int64', 64, BigInt64Array, false, 0),
  T(8, 'STRING', 'string', 0, undefined, false, 0),
  T(9, 'BOOL', 'bool', 8, Uint8Array, false, 1),
  T(10, 'FLOAT16', 'float16', 16, Uint16Array, true, 1),
  T(11, 'DOUBLE', 'float64', 64, Float64Array, true, 0),
  T(12, 'UINT32', 'uint32', 32, Uint32Array, false, 0),
  T(13, 'UINT64', 'uint64', 64, BigUint64Array, false, 0),
  T(14, 'COMPLEX64', 'complex64', 64, Float32Array, true, 0),
  T(15, 'COMPLEX128', 'complex128', 128, Float64Array, true, 0),
  T(16, 'BFLOAT16', 'bfloat16', 16, Uint16Array, true, 1),
  T(17, 'FLOAT8E4M3FN', 'float8e4m3fn', 8, Uint8Array, true, 1),
  T(18, 'FLOAT8E4M3FNUZ', 'float8e4m3fnuz', 8, Uint8Array, true, 1),
  T(19, 'FLOAT8E5M2', 'float8e5m2', 8, Uint8Array, true, 1),
  T(20, 'FLOAT8E5M2FNUZ', 'float8e5m2fnuz', 8, Uint8Array, true, 1),
  T(21, 'UINT4', 'uint4', 4, undefined, false, 2),
  T(22, 'INT4', 'int4', 4, undefined, false, 2),
  T(23, 'FLOAT4E2M1', 'float4e2m1', 4, undefined, true, 2),
  T(24, 'FLOAT8E8M0', 'float8e8m0', 8, Uint8Array, true, 1),
  T(25, 'UINT2', 'uint2', 2, undefined, false, 4),
  T(26, 'INT2', 'int2', 2, undefined, false, 4),
]);

/** Info for an element type id; throws a clear error for ids outside 0..26. */
export function dataTypeInfo(id: number): DataTypeInfo {
  const info = TABLE[id];
  if (!info) throw new FrugalError('E_UNSUPPORTED', `unknown ONNX element type ${id} (known: 0..${TABLE.length - 1}); the file may be corrupt or newer than this version of Frugal`);
  return info;
}

/** True when `id` is a known element type. */
export function isKnownDataType(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < TABLE.length;
}

/** Display name such as `float32`, or `type(99)` for an unknown id. */
export function dataTypeName(id: number): string {
  return isKnownDataType(id) ? TABLE[id]!.short : `type(${id})`;
}

/** Parses `float32`, `FLOAT`, `fp16`, ... to an id; undefined if unknown. */
export function parseDataType(name: string): number | undefined {
  const n = name.toLowerCase();
  const alias: Record<string, string> = { fp32: 'float32', float: 'float32', fp16: 'float16', half: 'float16', bf16: 'bfloat16', double: 'float64', fp64: 'float64' };
  const want = alias[n] ?? n;
  const hit = TABLE.find((t) => t.short === want || t.name.toLowerCase() === want);
  return hit?.id;
}

/** Bytes needed to store `count` elements of `id` packed (sub-byte types round up). */
export function byteSizeOf(id: number, count: number): number {
  const bits = dataTypeInfo(id).bits;
  return Math.ceil((bits * count) / 8);
}
