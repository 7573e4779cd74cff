/**
 * Decoding half of the table-driven codec (see proto.ts): bytes → the plain objects of proto-types.ts.
 */
import { FrugalError } from '../errors.js';
import type { MessageName, MessageTypes } from './proto-types.js';
import { MAX_DEPTH, type Obj, type Plan, type PlanField, planFor } from './proto-plan.js';
import type { TypedArrayKind } from './schema.js';
import { Reader, WIRE_LEN, WireError } from './wire.js';

// fatal: invalid UTF-8 is a decode error. ignoreBOM: keep a leading U+FEFF in the string (the default
// strips it, which would change the bytes on re-encode).
export const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

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

