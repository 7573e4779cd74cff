/**
 * Table-driven ONNX protobuf codec: walks `schema.ts` to turn bytes into the plain objects of
 * `proto-types.ts` and back.
 *
 * Decode: bytes/raw_data/strings-as-bytes are views into the input (no copy); packed TensorProto
 * numbers become typed arrays (copied, as the input may be unaligned; bit patterns kept, so NaN
 * payloads survive). Fields the schema does not know are kept raw in `unknownFields`. A known field
 * that arrives with an unexpected wire type is also kept as unknown rather than rejected: that is
 * what protobuf's own parsers do, and it keeps the bytes lossless. Repeated scalars are accepted
 * packed and unpacked. A singular field seen twice keeps the last value (sub-messages are not merged).
 * Every failure is FrugalError('E_DECODE') naming the field path and byte offset.
 *
 * Encode: two passes over the object. The size pass records, in pre-order, the byte length of every
 * sub-message and packed payload; the write pass consumes those lengths in the same order to write
 * length prefixes, so encoding is O(n) and never re-encodes a child. Known fields go out in field-
 * number order, then `unknownFields`: the order protobuf's C++/Python serializers use, so their files
 * re-encode byte-identically. Output is a chunk list; large byte fields are the caller's views.
 */
import { FrugalError } from '../errors.js';
import type { MessageName, MessageTypes } from './proto-types.js';
import { SCHEMA, type FieldSchema, type MessageSchema, type TypedArrayKind } from './schema.js';
import {
  LITTLE_ENDIAN, Reader, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, WireError, Writer,
  chunksByteLength, concatChunks, utf8Length, varintSize32, varintSize64,
} from './wire.js';

export { chunksByteLength, concatChunks } from './wire.js';

/** Deepest message nesting accepted (protobuf's own default recursion limit). */
export const MAX_DEPTH = 100;

type Obj = Record<string, unknown>;

/** A schema field with what the codec needs precomputed. */
interface PlanField extends FieldSchema {
  /** Wire type of one (unpacked) element. */
  readonly wireType: number;
  readonly tag: number;
  readonly tagSize: number;
  /** Set for message fields once all plans exist. */
  child: Plan | undefined;
}
interface Plan {
  readonly name: string;
  readonly fields: readonly PlanField[];
  readonly byNumber: readonly (PlanField | undefined)[];
  readonly repeated: readonly PlanField[];
  readonly typed: readonly PlanField[];
}

const WIRE_OF: Record<string, number> = {
  int32: WIRE_VARINT, int64: WIRE_VARINT, uint64: WIRE_VARINT, enum: WIRE_VARINT,
  float: WIRE_FIXED32, double: WIRE_FIXED64, string: WIRE_LEN, bytes: WIRE_LEN, message: WIRE_LEN,
};

function buildPlans(schemas: Readonly<Record<string, MessageSchema>>): Record<string, Plan> {
  const plans: Record<string, Plan> = {};
  for (const [name, s] of Object.entries(schemas)) {
    const fields = s.fields.map((f): PlanField => {
      const wireType = WIRE_OF[f.kind]!;
      const tag = ((f.number << 3) | (f.packed ? WIRE_LEN : wireType)) >>> 0;
      return { ...f, wireType, tag, tagSize: varintSize32(tag), child: undefined };
    });
    const byNumber: (PlanField | undefined)[] = s.byNumber.map((f) => (f ? fields.find((p) => p.number === f.number) : undefined));
    plans[name] = {
      name, fields, byNumber,
      repeated: fields.filter((f) => f.repeated),
      typed: fields.filter((f) => f.typedArray !== undefined),
    };
  }
  for (const p of Object.values(plans)) for (const f of p.fields) if (f.messageType) f.child = plans[f.messageType];
  return plans;
}

const PLANS = buildPlans(SCHEMA);

// fatal: invalid UTF-8 is a decode error. ignoreBOM: keep a leading U+FEFF in the string (the default
// strips it, which would change the bytes on re-encode).
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Decode

/** Words (uint32) per element of each typed array kind; 64-bit values are stored as (lo, hi). */
const WORDS: Record<TypedArrayKind, number> = { float32: 1, int32: 1, bigint64: 2, float64: 2, biguint64: 2 };

function makeTyped(kind: TypedArrayKind, w: Uint32Array): ArrayBufferView {
  const { buffer, byteOffset, length } = w;
  switch (kind) {
    case 'float32': return new Float32Array(buffer, byteOffset, length);
    case 'int32': return new Int32Array(buffer, byteOffset, length);
    case 'float64': return new Float64Array(buffer, byteOffset, length / 2);
    case 'bigint64': return new BigInt64Array(buffer, byteOffset, length / 2);
    case 'biguint64': return new BigUint64Array(buffer, byteOffset, length / 2);
  }
}

/**
 * Absent typed fields share one frozen empty array per kind: a zero-length typed array can never be
 * written, and allocating five per tensor dominated decode time. Plain arrays are fresh per object,
 * since callers may push to them.
 */
const EMPTY_TYPED: Record<TypedArrayKind, ArrayBufferView> = {
  float32: Object.freeze(new Float32Array(0)), int32: Object.freeze(new Int32Array(0)),
  bigint64: Object.freeze(new BigInt64Array(0)), float64: Object.freeze(new Float64Array(0)),
  biguint64: Object.freeze(new BigUint64Array(0)),
};

function newObject(plan: Plan): Obj {
  const o: Obj = {};
  for (const f of plan.repeated) o[f.name] = f.typedArray ? EMPTY_TYPED[f.typedArray] : [];
  return o;
}

function readString(r: Reader): string {
  const e = r.lengthEnd();
  const start = r.pos;
  const buf = r.buf;
  r.pos = e;
  if (e - start <= 32) {
    // Short ASCII strings (names, op types) are most strings; building them here skips a native call.
    let s = '';
    let i = start;
    for (; i < e; i++) {
      const b = buf[i]!;
      if (b >= 0x80) break;
      s += String.fromCharCode(b);
    }
    if (i === e) return s;
  }
  try {
    return textDecoder.decode(buf.subarray(start, e));
  } catch {
    return r.fail('invalid UTF-8 in string field', start);
  }
}

/** Reads one non-message scalar whose wire type has been checked. */
function readScalar(r: Reader, f: PlanField): unknown {
  switch (f.kind) {
    case 'int32': case 'enum': return r.int32();
    case 'int64': return r.int64();
    case 'uint64': return r.uint64();
    case 'float': return r.float();
    case 'double': return r.double();
    case 'string': return readString(r);
    default: return r.bytes(); // 'bytes'
  }
}

type Parts = (Uint32Array | number[])[];

/** Appends one unpacked element of a typed field to its parts, as 1 or 2 words. */
function readTypedElement(r: Reader, f: PlanField, parts: Parts): void {
  let last = parts[parts.length - 1];
  if (!Array.isArray(last)) parts.push((last = []));
  switch (f.typedArray) {
    case 'float32': last.push(r.fixed32()); return;
    case 'int32': last.push(r.uint32()); return; // low 32 bits are the int32's bits
    case 'float64': r.fixed64(); break;
    default: r.varint64(); // bigint64, biguint64
  }
  last.push(r.lo, r.hi);
}

/** Reads a packed typed field into a new word array; the element count is bounded by the length. */
function readTypedPacked(r: Reader, f: PlanField): Uint32Array {
  const end = r.lengthEnd();
  const start = r.pos;
  const len = end - start;
  const kind = f.typedArray!;
  if (kind === 'float32' || kind === 'float64') {
    const size = kind === 'float32' ? 4 : 8;
    if (len % size !== 0) r.fail(`packed ${f.protoName} length ${len} is not a multiple of ${size}`, start);
    r.pos = end;
    // Copy into a fresh (aligned) buffer. Not `buf.slice`: on a Node Buffer that is a view.
    const out = new Uint32Array(len / 4);
    new Uint8Array(out.buffer).set(r.buf.subarray(start, end));
    return out;
  }
  // Each varint ends with exactly one byte below 0x80, so counting those gives the element count.
  let count = 0;
  for (let i = start; i < end; i++) if (r.buf[i]! < 0x80) count++;
  const words = WORDS[kind];
  const out = new Uint32Array(count * words);
  const saved = r.end;
  r.end = end;
  for (let i = 0; r.pos < end; i += words) {
    r.varint64();
    out[i] = r.lo;
    if (words === 2) out[i + 1] = r.hi;
  }
  r.end = saved;
  return out;
}

function finishTyped(kind: TypedArrayKind, parts: Parts): ArrayBufferView {
  if (parts.length === 1 && parts[0] instanceof Uint32Array) return makeTyped(kind, parts[0]);
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint32Array(n);
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return makeTyped(kind, out);
}

/** Reads a packed run of a plain repeated scalar (ints, floats, dims...) onto `arr`. */
function readPackedScalars(r: Reader, f: PlanField, arr: unknown[]): void {
  const end = r.lengthEnd();
  const saved = r.end;
  r.end = end;
  while (r.pos < end) arr.push(readScalar(r, f));
  r.end = saved;
}

/** `.name`, or `.name[i]` for an element of a repeated field (index -1: the field as a whole). */
function pathSegment(f: PlanField, index: number): string {
  return f.repeated && index >= 0 ? `.${f.protoName}[${index}]` : `.${f.protoName}`;
}

/** Decodes fields from r.pos to `end` into a new object of `plan`'s message. */
function decodeFields(r: Reader, plan: Plan, end: number, depth: number): Obj {
  if (depth > MAX_DEPTH) r.fail(`messages nested deeper than ${MAX_DEPTH} levels`);
  const obj = newObject(plan);
  const byNumber = plan.byNumber;
  let typedParts: Parts[] | undefined;
  let unknown: Uint8Array[] | undefined;
  let f: PlanField | undefined;
  let index = -1;
  const saved = r.end;
  r.end = end;
  try {
    while (r.pos < end) {
      f = undefined;
      index = -1;
      const tagAt = r.pos;
      const tag = r.tag();
      const wt = tag & 7;
      const no = tag >>> 3;
      const field = no < byNumber.length ? byNumber[no] : undefined;
      const packedRun = field !== undefined && wt === WIRE_LEN && field.repeated && field.wireType !== WIRE_LEN;
      if (field === undefined || (wt !== field.wireType && !packedRun)) {
        (unknown ??= []).push(r.skipRaw(wt, tagAt));
        continue;
      }
      f = field;
      if (field.typedArray !== undefined) {
        const slot = plan.typed.indexOf(field);
        const parts = ((typedParts ??= [])[slot] ??= []);
        if (packedRun) parts.push(readTypedPacked(r, field));
        else readTypedElement(r, field, parts);
      } else if (field.kind === 'message') {
        if (field.repeated) {
          const arr = obj[field.name] as unknown[];
          index = arr.length;
          arr.push(decodeFields(r, field.child!, r.lengthEnd(), depth + 1));
        } else obj[field.name] = decodeFields(r, field.child!, r.lengthEnd(), depth + 1);
      } else if (field.repeated) {
        const arr = obj[field.name] as unknown[];
        index = arr.length;
        if (packedRun) readPackedScalars(r, field, arr);
        else arr.push(readScalar(r, field));
      } else obj[field.name] = readScalar(r, field);
    }
  } catch (e) {
    const err = e instanceof WireError ? e : new WireError(`${e instanceof Error ? e.message : String(e)} near byte ${r.pos}`);
    if (f !== undefined) err.segments.push(pathSegment(f, index));
    throw err;
  }
  r.end = saved;
  if (typedParts !== undefined) {
    plan.typed.forEach((tf, slot) => {
      const parts = typedParts![slot];
      if (parts !== undefined) obj[tf.name] = finishTyped(tf.typedArray!, parts);
    });
  }
  if (unknown !== undefined) obj.unknownFields = unknown;
  return obj;
}

function planFor(name: string): Plan {
  const plan = PLANS[name];
  if (plan === undefined) throw new FrugalError('E_USAGE', `ONNX schema has no message named ${name}`);
  if (!LITTLE_ENDIAN) throw new FrugalError('E_UNSUPPORTED', 'the ONNX codec needs a little-endian host');
  return plan;
}

/** Decodes any message of the schema table by its schema name (e.g. 'TypeProto.Tensor'). */
export function decodeBySchema(name: string, bytes: Uint8Array): Obj {
  const plan = planFor(name);
  // A Buffer (or other subclass) is re-viewed as a plain Uint8Array (no copy) so every bytes field
  // decoded is a plain Uint8Array view, whatever the caller passed.
  const u8 = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return decodeFields(new Reader(u8), plan, u8.length, 1);
  } catch (e) {
    if (e instanceof WireError) {
      let segs = e.segments.reverse();
      if (segs.length > 24) segs = [...segs.slice(0, 12), `...(${segs.length - 24} more)...`, ...segs.slice(-12)];
      const path = name + segs.join('');
      throw new FrugalError('E_DECODE', `Invalid ONNX protobuf: ${path}: ${e.detail}`);
    }
    throw new FrugalError('E_DECODE', `Invalid ONNX protobuf: ${name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

export function decodeMessage<N extends MessageName>(name: N, bytes: Uint8Array): MessageTypes[N] {
  return decodeBySchema(name, bytes) as unknown as MessageTypes[N];
}

// ---------------------------------------------------------------------------------------------
// Encode

const TWO_32 = 4294967296;
const INT64_MIN = -(2n ** 63n);
const UINT64_END = 2n ** 64n;
/** Halves of the last value split by `split64`. */
let LO = 0;
let HI = 0;

function encodeFail(plan: Plan, f: PlanField, detail: string): never {
  throw new FrugalError('E_INVALID_MODEL', `Cannot encode ${plan.name}.${f.protoName}: ${detail}`);
}

/** Splits an int64/uint64 value into LO/HI (two's complement; uint64 given a negative wraps). */
function split64(v: unknown, plan: Plan, f: PlanField): void {
  if (typeof v === 'number') {
    if (v >= 0 && v < TWO_32 && Number.isInteger(v)) {
      LO = v;
      HI = 0;
      return;
    }
    if (!Number.isInteger(v) || v < -(2 ** 63) || v >= 2 ** 64) encodeFail(plan, f, `${v} is not a 64-bit integer`);
    const hi = Math.floor(v / TWO_32);
    LO = (v - hi * TWO_32) >>> 0;
    HI = hi >>> 0;
  } else if (typeof v === 'bigint') {
    if (v < INT64_MIN || v >= UINT64_END) encodeFail(plan, f, `${v} is out of 64-bit range`);
    const u = BigInt.asUintN(64, v);
    LO = Number(u & 0xffffffffn);
    HI = Number(u >> 32n);
  } else encodeFail(plan, f, `expected number or bigint, got ${typeof v}`);
}

class Encoder {
  /** Pre-order byte lengths of sub-messages and packed payloads (size pass writes, write pass reads). */
  private readonly sizes: number[] = [];
  private cursor = 0;
  w: Writer | undefined;

  scalarSize(plan: Plan, f: PlanField, v: unknown): number {
    switch (f.kind) {
      case 'int32': case 'enum':
        if (typeof v !== 'number' || (v | 0) !== v) encodeFail(plan, f, `${String(v)} is not an int32`);
        return v >= 0 ? varintSize32(v) : 10;
      case 'int64': case 'uint64': split64(v, plan, f); return varintSize64(LO, HI);
      case 'float': case 'double':
        if (typeof v !== 'number') encodeFail(plan, f, `expected a number, got ${typeof v}`);
        return f.kind === 'float' ? 4 : 8;
      case 'string': {
        if (typeof v !== 'string') encodeFail(plan, f, `expected a string, got ${typeof v}`);
        const n = utf8Length(v);
        return varintSize32(n) + n;
      }
      default: {
        if (!(v instanceof Uint8Array)) encodeFail(plan, f, 'expected a Uint8Array');
        return varintSize32(v.length) + v.length;
      }
    }
  }

  writeScalar(plan: Plan, f: PlanField, v: unknown): void {
    const w = this.w!;
    switch (f.kind) {
      case 'int32': case 'enum': return w.int32(v as number);
      case 'int64': case 'uint64': split64(v, plan, f); return w.varint64(LO, HI);
      case 'float': return w.float(v as number);
      case 'double': return w.double(v as number);
      case 'string': { const n = utf8Length(v as string); w.varint32(n); return w.string(v as string, n); }
      default: w.varint32((v as Uint8Array).length); return w.raw(v as Uint8Array);
    }
  }

  /** Byte length of a packed payload (elements only, no tag/length). */
  packedSize(plan: Plan, f: PlanField, arr: ArrayLike<unknown>): number {
    if (f.kind === 'float') return arr.length * 4;
    if (f.kind === 'double') return arr.length * 8;
    if (arr instanceof BigInt64Array || arr instanceof BigUint64Array) {
      const words = new Uint32Array(arr.buffer, arr.byteOffset, arr.length * 2);
      let n = 0;
      for (let i = 0; i < words.length; i += 2) n += varintSize64(words[i]!, words[i + 1]!);
      return n;
    }
    let n = 0;
    for (let i = 0; i < arr.length; i++) n += this.scalarSize(plan, f, arr[i]);
    return n;
  }

  writePacked(plan: Plan, f: PlanField, arr: ArrayLike<unknown>): void {
    const w = this.w!;
    if ((arr instanceof Float32Array && f.kind === 'float') || (arr instanceof Float64Array && f.kind === 'double')) {
      return w.raw(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength)); // host is little-endian
    }
    if (arr instanceof BigInt64Array || arr instanceof BigUint64Array) {
      const words = new Uint32Array(arr.buffer, arr.byteOffset, arr.length * 2);
      for (let i = 0; i < words.length; i += 2) w.varint64(words[i]!, words[i + 1]!);
      return;
    }
    for (let i = 0; i < arr.length; i++) this.writeScalar(plan, f, arr[i]);
  }

  /** Size pass: byte length of `obj`'s fields; records child lengths in pre-order. */
  size(plan: Plan, obj: Obj): number {
    let n = 0;
    for (const f of plan.fields) {
      const v = obj[f.name];
      if (v === undefined || v === null) continue;
      if (!f.repeated) {
        if (f.kind === 'message') {
          const at = this.sizes.push(0) - 1;
          const s = this.size(f.child!, v as Obj);
          this.sizes[at] = s;
          n += f.tagSize + varintSize32(s) + s;
        } else n += f.tagSize + this.scalarSize(plan, f, v);
        continue;
      }
      const arr = v as ArrayLike<unknown>;
      if (arr.length === 0) continue;
      if (f.kind === 'message') {
        for (let i = 0; i < arr.length; i++) {
          const at = this.sizes.push(0) - 1;
          const s = this.size(f.child!, arr[i] as Obj);
          this.sizes[at] = s;
          n += f.tagSize + varintSize32(s) + s;
        }
      } else if (f.packed) {
        const s = this.packedSize(plan, f, arr);
        this.sizes.push(s);
        n += f.tagSize + varintSize32(s) + s;
      } else {
        for (let i = 0; i < arr.length; i++) n += f.tagSize + this.scalarSize(plan, f, arr[i]);
      }
    }
    const unknown = obj.unknownFields as Uint8Array[] | undefined;
    if (unknown) for (const u of unknown) n += u.length;
    return n;
  }

  /** Write pass: mirrors `size` exactly, consuming the recorded lengths in the same order. */
  write(plan: Plan, obj: Obj): void {
    const w = this.w!;
    for (const f of plan.fields) {
      const v = obj[f.name];
      if (v === undefined || v === null) continue;
      if (!f.repeated) {
        w.varint32(f.tag);
        if (f.kind === 'message') {
          w.varint32(this.sizes[this.cursor++]!);
          this.write(f.child!, v as Obj);
        } else this.writeScalar(plan, f, v);
        continue;
      }
      const arr = v as ArrayLike<unknown>;
      if (arr.length === 0) continue;
      if (f.kind === 'message') {
        for (let i = 0; i < arr.length; i++) {
          w.varint32(f.tag);
          w.varint32(this.sizes[this.cursor++]!);
          this.write(f.child!, arr[i] as Obj);
        }
      } else if (f.packed) {
        w.varint32(f.tag);
        w.varint32(this.sizes[this.cursor++]!);
        this.writePacked(plan, f, arr);
      } else {
        for (let i = 0; i < arr.length; i++) {
          w.varint32(f.tag);
          this.writeScalar(plan, f, arr[i]);
        }
      }
    }
    const unknown = obj.unknownFields as Uint8Array[] | undefined;
    if (unknown) for (const u of unknown) w.raw(u);
  }
}

/** Encodes any message of the schema table by its schema name; returns the output as chunks. */
export function encodeBySchema(name: string, msg: Obj): Uint8Array[] {
  const plan = planFor(name);
  const enc = new Encoder();
  const total = enc.size(plan, msg);
  // protobuf cannot parse a message of 2 GiB or more; ONNX stores such weights as external data.
  if (total > 0x7fffffff) {
    throw new FrugalError('E_UNSUPPORTED', `${name} would be ${total} bytes, over protobuf's 2 GiB limit; store large tensors as external data`);
  }
  enc.w = new Writer(total);
  enc.write(plan, msg);
  const chunks = enc.w.finish();
  if (chunksByteLength(chunks) !== total) throw new Error(`proto: encoded ${name} size mismatch (internal error)`);
  return chunks;
}

export function encodeMessage<N extends MessageName>(name: N, msg: MessageTypes[N]): Uint8Array[] {
  return encodeBySchema(name, msg as unknown as Obj);
}

/** Encodes to one contiguous buffer (copies large fields; for small messages and tests). */
export function encodeMessageToBytes<N extends MessageName>(name: N, msg: MessageTypes[N]): Uint8Array {
  return concatChunks(encodeMessage(name, msg));
}
