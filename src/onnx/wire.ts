/**
 * Protobuf wire format: a bounds-checked reader and a chunked writer. Knows nothing about ONNX; the
 * schema-driven codec in `proto.ts` drives both.
 *
 * Reader invariants: `pos <= end <= buf.length` always; every read checks against `end` (the end of
 * the message being decoded, not just of the buffer), so a forged length can never make a nested
 * message read past its parent, and nothing is allocated from a length before it is checked against
 * the bytes that remain. Every failure is a `WireError` carrying the absolute byte offset; `proto.ts`
 * adds the field path and turns it into a FrugalError('E_DECODE').
 *
 * 64-bit varints are read as two 32-bit halves (`lo`, `hi`, both unsigned) so that the hot path never
 * allocates a BigInt; `int64()`/`uint64()` build a number when the value is a safe integer and a
 * bigint otherwise.
 */
import { FrugalError } from '../errors.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

/** Byte fields at least this long are emitted as views of the caller's bytes, never copied. */
export const LARGE_BYTES = 64 * 1024;

/** Typed arrays alias raw bytes, which is only right on a little-endian host (every Node target). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A decode failure at an absolute byte offset; `proto.ts` prefixes the field path. */
export class WireError extends FrugalError {
  /** Path segments innermost last (e.g. ['.graph', '.node[3]']), added while unwinding. */
  readonly segments: string[] = [];
  constructor(readonly detail: string) {
    super('E_DECODE', detail);
    this.name = 'WireError';
  }
}

const TWO_32 = 4294967296;

/** Number for a signed 64-bit value split into halves when it is a safe integer, else bigint. */
export function int64FromParts(lo: number, hi: number): number | bigint {
  const shi = hi | 0;
  // |shi| < 2^21 keeps shi * 2^32 + lo exact (< 2^53); isSafeInteger then excludes -2^53.
  if (shi >= -0x200000 && shi < 0x200000) {
    const v = shi * TWO_32 + lo;
    if (Number.isSafeInteger(v)) return v;
  }
  return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
}

/** Number for an unsigned 64-bit value split into halves when it is a safe integer, else bigint. */
export function uint64FromParts(lo: number, hi: number): number | bigint {
  if (hi >>> 0 < 0x200000) return (hi >>> 0) * TWO_32 + (lo >>> 0);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export class Reader {
  pos: number;
  /** Exclusive limit of the message currently being read. */
  end: number;
  /** Halves of the last 64-bit value read by `varint64()` / `fixed64()`. */
  lo = 0;
  hi = 0;
  private view: DataView | undefined;

  constructor(readonly buf: Uint8Array, start = 0, end = buf.length) {
    this.pos = start;
    this.end = end;
  }

  fail(detail: string, at = this.pos): never {
    throw new WireError(`${detail} at byte ${at}`);
  }

  /** Reads a varint of up to 10 bytes into `lo`/`hi`. */
  varint64(): void {
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    const end = this.end;
    let lo = 0;
    let hi = 0;
    let b = 0;
    // Bytes 0..3 carry bits 0..27 of lo.
    for (let shift = 0; shift < 28; shift += 7) {
      if (p >= end) this.fail('truncated varint', start);
      b = buf[p++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = p;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    // Byte 4 carries bits 28..31 of lo and bits 0..2 of hi.
    if (p >= end) this.fail('truncated varint', start);
    b = buf[p++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      // Bytes 5..9 carry hi bits 3..31 (the 10th byte's bits beyond 64 are ignored, as protobuf does).
      let shift = 3;
      for (;;) {
        if (p >= end) this.fail('truncated varint', start);
        b = buf[p++]!;
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
        shift += 7;
        if (shift > 31) this.fail('varint longer than 10 bytes', start);
      }
    }
    this.pos = p;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint truncated to its low 32 bits (unsigned). */
  uint32(): number {
    const buf = this.buf;
    const p = this.pos;
    // Fast path: one-byte varint (most tags, lengths of short strings, small enums).
    if (p < this.end && buf[p]! < 0x80) {
      this.pos = p + 1;
      return buf[p]!;
    }
    this.varint64();
    return this.lo;
  }

  /** int32/enum: low 32 bits as signed (a negative int32 arrives sign-extended to 10 bytes). */
  int32(): number {
    return this.uint32() | 0;
  }

  int64(): number | bigint {
    this.varint64();
    return int64FromParts(this.lo, this.hi);
  }

  uint64(): number | bigint {
    this.varint64();
    return uint64FromParts(this.lo, this.hi);
  }

  private dv(): DataView {
    return (this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  /** Unsigned 32-bit little-endian. */
  fixed32(): number {
    if (this.end - this.pos < 4) this.fail('truncated fixed32');
    const v = this.dv().getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Reads 8 bytes little-endian into `lo`/`hi`. */
  fixed64(): void {
    if (this.end - this.pos < 8) this.fail('truncated fixed64');
    const dv = this.dv();
    this.lo = dv.getUint32(this.pos, true);
    this.hi = dv.getUint32(this.pos + 4, true);
    this.pos += 8;
  }

  float(): number {
    if (this.end - this.pos < 4) this.fail('truncated float');
    const v = this.dv().getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    if (this.end - this.pos < 8) this.fail('truncated double');
    const v = this.dv().getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /**
   * Reads a length prefix and returns the payload's end offset, checked against the bytes left, so
   * the caller never allocates from a forged length.
   */
  lengthEnd(): number {
    const at = this.pos;
    this.varint64();
    const remaining = this.end - this.pos;
    if (this.hi !== 0 || this.lo > remaining) {
      const len = this.hi * TWO_32 + this.lo;
      throw new WireError(
        `length ${len} at byte ${at} runs past the end of the buffer (${remaining} bytes left; file truncated or corrupt)`,
      );
    }
    return this.pos + this.lo;
  }

  /** A length-delimited payload as a view into the input (no copy). */
  bytes(): Uint8Array {
    const e = this.lengthEnd();
    const v = this.buf.subarray(this.pos, e);
    this.pos = e;
    return v;
  }

  /**
   * Reads a tag; returns it as `fieldNumber << 3 | wireType` (unsigned). Rejects field number 0 and
   * tags wider than 32 bits.
   */
  tag(): number {
    const at = this.pos;
    let t: number;
    if (at < this.end && this.buf[at]! < 0x80) {
      t = this.buf[at]!;
      this.pos = at + 1;
    } else {
      this.varint64();
      if (this.hi !== 0) this.fail('tag wider than 32 bits', at);
      t = this.lo;
    }
    if (t >>> 3 === 0) this.fail('field number 0', at);
    return t;
  }

  /** Skips the value of a field whose tag was just read; groups (wire types 3/4) are rejected. */
  skip(wireType: number, tagAt: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_FIXED64:
        if (this.end - this.pos < 8) this.fail('truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos = this.lengthEnd();
        return;
      case WIRE_FIXED32:
        if (this.end - this.pos < 4) this.fail('truncated fixed32');
        this.pos += 4;
        return;
      default:
        this.fail(`unsupported wire type ${wireType} (groups are not used by ONNX)`, tagAt);
    }
  }

  /** Skips a field (tag already read at `tagAt`) and returns its raw bytes, tag included, as a view. */
  skipRaw(wireType: number, tagAt: number): Uint8Array {
    this.skip(wireType, tagAt);
    return this.buf.subarray(tagAt, this.pos);
  }
}

/** Byte length of the varint for the 64-bit value with halves lo/hi (unsigned). */
export function varintSize64(lo: number, hi: number): number {
  if (hi === 0) return varintSize32(lo);
  if (hi < 0x8) return 5;
  if (hi < 0x400) return 6;
  if (hi < 0x20000) return 7;
  if (hi < 0x1000000) return 8;
  if (hi < 0x80000000) return 9;
  return 10;
}

/** Byte length of the varint for an unsigned 32-bit value. */
export function varintSize32(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

const BLOCK = 1 << 20;
const f32 = new Float32Array(1);
const f32bits = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const f64bits = new Uint32Array(f64.buffer);
const utf8 = new TextEncoder();

/**
 * Builds output as a list of chunks. Small values go into a scratch block; views of LARGE_BYTES or
 * more are appended as they are. Flushed parts of a block are never written again, so the chunks
 * handed out stay valid. `expected` (the total size, known from the size pass) sizes the blocks so a
 * small message comes out as exactly one chunk.
 */
export class Writer {
  private readonly chunks: Uint8Array[] = [];
  private buf = new Uint8Array(0);
  private start = 0;
  pos = 0;
  /** Bytes written so far, views included. */
  private written = 0;

  constructor(private readonly expected = BLOCK) {}

  private flush(): void {
    if (this.pos > this.start) this.chunks.push(this.buf.subarray(this.start, this.pos));
    this.start = this.pos;
  }

  /** Makes room for n more bytes in the scratch block. */
  private ensure(n: number): void {
    if (this.buf.length - this.pos >= n) return;
    this.flush();
    const hint = Math.min(BLOCK, Math.max(256, this.expected - this.written));
    this.buf = new Uint8Array(Math.max(n, hint));
    this.start = this.pos = 0;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
    this.written++;
  }

  /** Unsigned 32-bit varint. */
  varint32(v: number): void {
    this.ensure(5);
    const buf = this.buf;
    let p = this.pos;
    v >>>= 0;
    while (v >= 0x80) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    this.written += p - this.pos;
    this.pos = p;
  }

  /** 64-bit varint from unsigned halves. */
  varint64(lo: number, hi: number): void {
    if (hi === 0) return this.varint32(lo);
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    lo >>>= 0;
    hi >>>= 0;
    for (let i = 0; i < 4; i++) {
      buf[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    // Fifth byte: lo bits 28..31 and hi bits 0..2.
    let b = lo | ((hi & 0x7) << 4);
    hi >>>= 3;
    while (hi !== 0) {
      buf[p++] = b | 0x80;
      b = hi & 0x7f;
      hi >>>= 7;
    }
    buf[p++] = b;
    this.written += p - this.pos;
    this.pos = p;
  }

  /** int32/enum: negative values are sign-extended to 10 bytes, as protobuf writes them. */
  int32(v: number): void {
    if (v >= 0) this.varint32(v);
    else this.varint64(v >>> 0, 0xffffffff);
  }

  fixed32(v: number): void {
    this.ensure(4);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = v & 0xff;
    buf[p + 1] = (v >>> 8) & 0xff;
    buf[p + 2] = (v >>> 16) & 0xff;
    buf[p + 3] = v >>> 24;
    this.pos = p + 4;
    this.written += 4;
  }

  fixed64(lo: number, hi: number): void {
    this.fixed32(lo);
    this.fixed32(hi);
  }

  float(v: number): void {
    f32[0] = v;
    this.fixed32(f32bits[0]!);
  }

  double(v: number): void {
    f64[0] = v;
    this.fixed64(f64bits[0]!, f64bits[1]!);
  }

  /** Raw bytes: copied when small, appended as the same view when LARGE_BYTES or more. */
  raw(v: Uint8Array): void {
    if (v.length >= LARGE_BYTES) {
      this.flush();
      this.chunks.push(v);
    } else {
      this.ensure(v.length);
      this.buf.set(v, this.pos);
      this.pos += v.length;
    }
    this.written += v.length;
  }

  /** A string whose UTF-8 length `len` the caller has computed with `utf8Length`. */
  string(s: string, len: number): void {
    this.ensure(len);
    const buf = this.buf;
    let p = this.pos;
    if (len === s.length) {
      // Equal lengths mean every code unit is ASCII (anything else takes 2+ bytes per unit).
      for (let i = 0; i < len; i++) buf[p++] = s.charCodeAt(i);
    } else {
      utf8.encodeInto(s, buf.subarray(p, p + len));
      p += len;
    }
    this.pos = p;
    this.written += len;
  }

  /** The chunks written; the writer must not be used afterwards. */
  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }
}

/** UTF-8 byte length of `s` as TextEncoder encodes it (a lone surrogate becomes U+FFFD: 3 bytes). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a surrogate pair: 2 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}

export function chunksByteLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunksByteLength(chunks));
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}
