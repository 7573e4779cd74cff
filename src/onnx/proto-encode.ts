/**
 * Encoding half of the table-driven codec (see proto.ts): plain objects → a chunk list.
 */
import { FrugalError } from '../errors.js';
import type { MessageName, MessageTypes } from './proto-types.js';
import { type Obj, type Plan, type PlanField, planFor } from './proto-plan.js';
import { Writer, chunksByteLength, concatChunks, utf8Length, varintSize32, varintSize64 } from './wire.js';

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
  if (chunksByteLength(chunks) !== total) throw new FrugalError('E_INTERNAL', `proto: encoded ${name} size differs from its planned size`);
  return chunks;
}

export function encodeMessage<N extends MessageName>(name: N, msg: MessageTypes[N]): Uint8Array[] {
  return encodeBySchema(name, msg as unknown as Obj);
}

/** Encodes to one contiguous buffer (copies large fields; for small messages and tests). */
export function encodeMessageToBytes<N extends MessageName>(name: N, msg: MessageTypes[N]): Uint8Array {
  return concatChunks(encodeMessage(name, msg));
}
