import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { FrugalError } from '../errors.js';
import { byteSizeOf, DataType, dataTypeInfo, dataTypeName } from './dtype.js';

/**
 * Where a tensor's bytes live outside the model file. `path` is absolute and has already been checked
 * to stay inside the model's folder (see `src/onnx/external-data.ts`); `location` is the string the
 * model wrote, kept so that re-encoding without moving data writes it back unchanged.
 */
export interface ExternalRef {
  readonly path: string;
  readonly location: string;
  readonly offset: number;
  readonly length: number;
  /** The remaining external_data entries (e.g. `checksum`), in order. */
  readonly extraEntries?: ReadonlyArray<readonly [string, string]>;
}

/** Fields of a TensorProto that the IR carries but does not interpret. */
export interface TensorExtra {
  docString?: string;
  metadataProps?: Array<[string, string]>;
  segment?: { begin?: number | bigint; end?: number | bigint };
  /** Raw bytes of protobuf fields this version does not know, re-emitted on encode. */
  unknownFields?: Uint8Array[];
}

export type Dims = readonly number[];

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/**
 * A constant tensor: element type, dimensions and data. Numeric data is stored as packed
 * little-endian bytes (`raw`, usually a view into the model file's buffer, never copied on decode),
 * or read lazily from an external file on first use. STRING tensors hold one byte string per element.
 */
export class Tensor {
  name: string;
  readonly dtype: number;
  readonly dims: Dims;
  extra: TensorExtra;
  private rawBytes: Uint8Array | undefined;
  private readonly strs: Uint8Array[] | undefined;
  /** Set while the data still lives in an external file (cleared once loaded, or moved). */
  external: ExternalRef | undefined;

  private constructor(
    name: string,
    dtype: number,
    dims: Dims,
    raw: Uint8Array | undefined,
    strings: Uint8Array[] | undefined,
    external: ExternalRef | undefined,
    extra: TensorExtra,
  ) {
    this.name = name;
    this.dtype = dtype;
    this.dims = Object.freeze([...dims]);
    this.rawBytes = raw;
    this.strs = strings;
    this.external = external;
    this.extra = extra;
  }

  /** A tensor over packed little-endian bytes (not copied). Checks the byte count against dims. */
  static fromBytes(dtype: number, dims: Dims, bytes: Uint8Array, name = '', extra: TensorExtra = {}): Tensor {
    const t = new Tensor(name, dtype, dims, bytes, undefined, undefined, extra);
    const want = byteSizeOf(dtype, t.numel);
    if (bytes.byteLength !== want) {
      throw new FrugalError(
        'E_INVALID_MODEL',
        `tensor '${name}': ${dataTypeName(dtype)}[${dims.join(',')}] needs ${want} bytes of data but has ${bytes.byteLength}`,
      );
    }
    return t;
  }

  /** A tensor whose bytes live in an external file, read on first use. */
  static fromExternal(dtype: number, dims: Dims, ref: ExternalRef, name = '', extra: TensorExtra = {}): Tensor {
    return new Tensor(name, dtype, dims, undefined, undefined, ref, extra);
  }

  /** A STRING tensor; each element is UTF-8 (or arbitrary) bytes. */
  static fromStrings(dims: Dims, values: Uint8Array[], name = '', extra: TensorExtra = {}): Tensor {
    return new Tensor(name, DataType.STRING, dims, undefined, values, undefined, extra);
  }

  /**
   * A tensor from a typed array holding one element per slot (Float32Array for FLOAT, Uint16Array of
   * bit patterns for FLOAT16, BigInt64Array for INT64, ...). The array's bytes are used directly.
   */
  static fromArray(dtype: number, dims: Dims, data: TypedArray | number[], name = ''): Tensor {
    const info = dataTypeInfo(dtype);
    if (!info.array) throw new FrugalError('E_UNSUPPORTED', `Tensor.fromArray: ${info.short} has no one-element-per-slot array; use fromBytes with packed data`);
    const arr = Array.isArray(data)
      ? info.array === BigInt64Array || info.array === BigUint64Array
        ? (info.array as BigInt64ArrayConstructor).from(data.map((x) => BigInt(x)))
        : (info.array as Float32ArrayConstructor).from(data)
      : data;
    return Tensor.fromBytes(dtype, dims, new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), name);
  }

  /** Scalar helpers for building graphs. */
  static scalar(dtype: number, value: number | bigint, name = ''): Tensor {
    return Tensor.fromArray(dtype, [], [value as number], name);
  }

  /** Number of elements (1 for a scalar). */
  get numel(): number {
    let n = 1;
    for (const d of this.dims) n *= d;
    return n;
  }

  /** Bytes of packed data (for STRING: the summed string lengths). */
  get byteLength(): number {
    if (this.strs) return this.strs.reduce((s, b) => s + b.byteLength, 0);
    if (this.external && !this.rawBytes) return this.external.length;
    return this.rawBytes?.byteLength ?? 0;
  }

  get isString(): boolean {
    return this.dtype === DataType.STRING;
  }

  /** True once the data is in memory (not only in an external file). */
  get isLoaded(): boolean {
    return this.rawBytes !== undefined || this.strs !== undefined;
  }

  /** The string elements of a STRING tensor. */
  strings(): Uint8Array[] {
    if (!this.strs) throw new FrugalError('E_UNSUPPORTED', `tensor '${this.name}' is ${dataTypeName(this.dtype)}, not string`);
    return this.strs;
  }

  /**
   * Packed little-endian bytes. External data is read from its file on first call and kept (one copy
   * in memory, as the design allows); the returned array may be a view into a larger buffer.
   */
  bytes(): Uint8Array {
    if (this.rawBytes) return this.rawBytes;
    if (this.strs) throw new FrugalError('E_UNSUPPORTED', `tensor '${this.name}' is a string tensor and has no packed bytes`);
    const ref = this.external;
    if (!ref) return (this.rawBytes = new Uint8Array(0));
    this.rawBytes = readExternal(ref, this.name);
    const want = byteSizeOf(this.dtype, this.numel);
    if (this.rawBytes.byteLength !== want) {
      throw new FrugalError(
        'E_EXTERNAL_DATA',
        `tensor '${this.name}': external data '${ref.location}' gives ${this.rawBytes.byteLength} bytes but ${dataTypeName(this.dtype)}[${this.dims.join(',')}] needs ${want}`,
      );
    }
    return this.rawBytes;
  }

  /**
   * The data as a typed array with one element per slot (aligned copy when the bytes are unaligned).
   * Sub-byte types have no such array: use `bytes()`.
   */
  toArray(): TypedArray {
    const info = dataTypeInfo(this.dtype);
    if (!info.array) throw new FrugalError('E_UNSUPPORTED', `tensor '${this.name}': ${info.short} has no one-element-per-slot array; use bytes()`);
    const b = this.bytes();
    const width = info.bits / 8 / (info.id === DataType.COMPLEX64 || info.id === DataType.COMPLEX128 ? 2 : 1);
    const Ctor = info.array as Float32ArrayConstructor;
    if (b.byteOffset % width === 0) return new Ctor(b.buffer, b.byteOffset, b.byteLength / width) as TypedArray;
    const copy = new Uint8Array(b.byteLength);
    copy.set(b);
    return new Ctor(copy.buffer, 0, b.byteLength / width) as TypedArray;
  }

  /** A new tensor with the same data and a different name (data shared, not copied). */
  withName(name: string): Tensor {
    const t = new Tensor(name, this.dtype, this.dims, this.rawBytes, this.strs, this.external, { ...this.extra });
    return t;
  }

  /** Replaces the data in place (used when a pass rewrites a weight); `bytes` must match dims. */
  setBytes(bytes: Uint8Array): void {
    const want = byteSizeOf(this.dtype, this.numel);
    if (bytes.byteLength !== want) throw new FrugalError('E_INVALID_MODEL', `tensor '${this.name}': setBytes got ${bytes.byteLength} bytes, needs ${want}`);
    this.rawBytes = bytes;
    this.external = undefined;
  }

  toString(): string {
    return `Tensor(${this.name || '<unnamed>'}: ${dataTypeName(this.dtype)}[${this.dims.join(',')}])`;
  }
}

function readExternal(ref: ExternalRef, tensorName: string): Uint8Array {
  let fd: number;
  try {
    // Non-blocking: opening a FIFO for reading would otherwise wait forever for a writer. It changes
    // nothing for a regular file, and anything else is refused below before a read.
    fd = openSync(ref.path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': cannot open external data file '${ref.location}' (${(e as Error).message}); keep it next to the model`, { cause: e });
  }
  try {
    // Checked on the descriptor, not only at decode: the path may have been replaced since.
    if (!fstatSync(fd).isFile()) {
      throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data location '${ref.location}' is not a regular file; external data must be a regular file next to the model`);
    }
    const out = Buffer.allocUnsafe(ref.length);
    let done = 0;
    while (done < ref.length) {
      const n = readSync(fd, out, done, ref.length - done, ref.offset + done);
      if (n === 0) {
        throw new FrugalError(
          'E_EXTERNAL_DATA',
          `tensor '${tensorName}': external data file '${ref.location}' ends before offset ${ref.offset} + length ${ref.length}; the file is truncated or the offsets are wrong`,
        );
      }
      done += n;
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } finally {
    closeSync(fd);
  }
}
