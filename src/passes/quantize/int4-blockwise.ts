/**
 * Block-wise 4-bit quantization of weight matrices, and the byte layouts of the three ops that read it:
 * com.microsoft `MatMulNBits`, com.microsoft `GatherBlockQuantized` and ONNX `DequantizeLinear` with
 * `block_size` (opset 21). The arithmetic is O(parameters) bookkeeping done once per weight, so it is
 * plain JS loops (DESIGN.md allows that for weight preprocessing).
 *
 * Conventions. A weight is seen as `rows` vectors of `len` elements each; each vector is cut into
 * `kBlocks = ceil(len / blockSize)` blocks, and each block gets one scale (and, asymmetric, one zero
 * point). Codes are unsigned 0..15 and dequantize as `(code - zeroPoint) * scale`; symmetric blocks use
 * zero point 8 (MatMulNBits's implied default), which is the same as a signed int4 code `code - 8`.
 * Padding elements of a last partial block get the code of zero, so they dequantize to exactly 0.
 */
import { ROUNDING_MAGIC } from './quant-math.js';

/** The result of quantizing `rows` vectors of `len` elements block-wise. */
export interface BlockQuantized {
  rows: number;
  len: number;
  blockSize: number;
  kBlocks: number;
  /**
   * Codes 0..15, two per byte: `rows × kBlocks × blockSize / 2` bytes (padded), vector-major then element
   * order, element 2j of a block in the low nibble of byte j. This is MatMulNBits's `B` layout (uint8 [N, kBlocks, blockSize / 2]) as it is.
   */
  packed: Uint8Array;
  /** One scale per block, `rows × kBlocks`. */
  scales: Float32Array;
  /** One zero point (0..15) per block, `rows × kBlocks`; all 8 when symmetric. */
  zeroPoints: Uint8Array;
  symmetric: boolean;
}

/** Bit pattern of +Infinity in float32: larger patterns (sign bit clear) are NaNs. */
const INF_BITS = 0x7f800000;
const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);

/**
 * Quantizes `rows` vectors read from `src`: element `k` of vector `r` is `src[r * rowStride + k * elemStride]`
 * (MatMul B [K, N]: rows N, rowStride 1, elemStride N; Gemm transB B [N, K] and Gather tables [V, D]:
 * rowStride len, elemStride 1).
 *
 * Symmetric: the block's element of largest magnitude m maps to code 0 (m = -8 · scale, so scale =
 * -m / 8): all 16 levels are used and the extreme is exact. Asymmetric: the range [min(0, lo), max(0, hi)]
 * maps onto 0..15 with an integer zero point; zero is always in range because a uint4 zero point can only
 * express ranges that contain it.
 *
 * Speed (this is most of `frugal quantize --mode int4`'s time on a large model): a block's range is found
 * on the float32 bit patterns with branch-free integer maxima (a float compare per element mispredicts
 * every time the running extreme moves, which on 32-element blocks is often), and codes are written
 * straight into the packed layout. Vectors that are columns (MatMul B) are processed a band of `blockSize`
 * rows at a time, all columns together, so memory is read in order.
 */
export function quantizeBlockwise(
  src: Float32Array,
  rows: number,
  len: number,
  rowStride: number,
  elemStride: number,
  blockSize: number,
  symmetric: boolean,
): BlockQuantized {
  const kBlocks = Math.ceil(len / blockSize);
  const q: BlockQuantized = {
    rows,
    len,
    blockSize,
    kBlocks,
    packed: new Uint8Array((rows * kBlocks * blockSize) / 2),
    scales: new Float32Array(rows * kBlocks),
    zeroPoints: new Uint8Array(rows * kBlocks),
    symmetric,
  };
  // The same bytes as int32 (a Float32Array view is always 4-byte aligned).
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  if (elemStride === 1) quantizeContiguous(src, bits, rowStride, q);
  else quantizeBands(src, bits, rowStride, elemStride, q);
  return q;
}

/** Vectors whose elements are adjacent: one block at a time. */
function quantizeContiguous(src: Float32Array, bits: Int32Array, rowStride: number, q: BlockQuantized): void {
  const { rows, len, blockSize, kBlocks, packed } = q;
  const half = blockSize >> 1;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < kBlocks; b++) {
      const at = r * rowStride + b * blockSize;
      const n = Math.min(blockSize, len - b * blockSize);
      // Largest positive and largest negative magnitude, as bit patterns (monotone in the value for
      // non-negative floats): d & ~(d >> 31) is max(d, 0) without a branch.
      let pos = 0;
      let neg = 0;
      for (let i = at, end = at + n; i < end; i++) {
        const x = bits[i]!;
        const s = x >> 31;
        const dp = (x & ~s) - pos;
        pos += dp & ~(dp >> 31);
        const dn = (x & 0x7fffffff & s) - neg;
        neg += dn & ~(dn >> 31);
      }
      const bi = r * kBlocks + b;
      const scale = blockParams(q, bi, src, at, 1, n, pos, neg);
      const zp = q.zeroPoints[bi]!;
      const out = bi * half;
      let i = 0;
      if (scale !== 0) for (; i + 1 < n; i += 2) packed[out + (i >> 1)] = code4(src[at + i]!, scale, zp) | (code4(src[at + i + 1]!, scale, zp) << 4);
      writeTail(q, bi, i, n, scale, src, at, 1);
    }
  }
}

/**
 * Strided vectors (columns): a band of one block's elements of every vector at a time, read in memory
 * order, four elements of a vector per step (so its running range stays in registers across them).
 */
function quantizeBands(src: Float32Array, bits: Int32Array, rowStride: number, elemStride: number, q: BlockQuantized): void {
  const { rows, len, blockSize, kBlocks, packed } = q;
  const half = blockSize >> 1;
  const rowBytes = kBlocks * half;
  const pos = new Int32Array(rows);
  const neg = new Int32Array(rows);
  const scales = new Float64Array(rows);
  const zps = new Int32Array(rows);
  const e = elemStride;
  for (let b = 0; b < kBlocks; b++) {
    const k0 = b * blockSize;
    const n = Math.min(blockSize, len - k0);
    const n4 = n & ~3;
    pos.fill(0);
    neg.fill(0);
    for (let i = 0; i < n; i += 4) {
      const step = i < n4 ? 4 : n - i;
      for (let r = 0, at = (k0 + i) * e; r < rows; r++, at += rowStride) {
        let p = pos[r]!;
        let m = neg[r]!;
        for (let t = 0; t < step; t++) {
          const x = bits[at + t * e]!;
          const s = x >> 31;
          const dp = (x & ~s) - p;
          p += dp & ~(dp >> 31);
          const dn = (x & 0x7fffffff & s) - m;
          m += dn & ~(dn >> 31);
        }
        pos[r] = p;
        neg[r] = m;
      }
    }
    for (let r = 0; r < rows; r++) {
      const bi = r * kBlocks + b;
      scales[r] = blockParams(q, bi, src, r * rowStride + k0 * e, e, n, pos[r]!, neg[r]!);
      zps[r] = q.zeroPoints[bi]!;
    }
    for (let i = 0; i < n4; i += 4) {
      for (let r = 0, at = (k0 + i) * e, o = b * half + (i >> 1); r < rows; r++, at += rowStride, o += rowBytes) {
        const scale = scales[r]!;
        if (scale === 0) continue; // writeTail fills the block with zero points
        const zp = zps[r]!;
        packed[o] = code4(src[at]!, scale, zp) | (code4(src[at + e]!, scale, zp) << 4);
        packed[o + 1] = code4(src[at + 2 * e]!, scale, zp) | (code4(src[at + 3 * e]!, scale, zp) << 4);
      }
    }
    for (let r = 0; r < rows; r++) {
      const scale = scales[r]!;
      writeTail(q, r * kBlocks + b, scale === 0 ? 0 : n4, n, scale, src, r * rowStride + k0 * e, e);
    }
  }
}

/**
 * Writes the codes of block `bi`'s elements `from..n` (read at `src[at + i * step]`) and the padding
 * past `n`, one nibble at a time into bytes that are still zero. Padding, and every element of an
 * all-zero block (scale 0), get the zero-point code, which dequantizes to exactly 0.
 */
function writeTail(q: BlockQuantized, bi: number, from: number, n: number, scale: number, src: Float32Array, at: number, step: number): void {
  const zp = q.zeroPoints[bi]!;
  const out = bi * q.blockSize;
  for (let i = from; i < q.blockSize; i++) {
    const c = i < n && scale !== 0 ? code4(src[at + i * step]!, scale, zp) : zp;
    q.packed[(out + i) >> 1] |= i & 1 ? c << 4 : c;
  }
}

/**
 * Sets block `bi`'s scale and zero point (see `quantizeBlockwise` for the rules) from the bit patterns of
 * its largest positive element `pos` and largest negative magnitude `neg`, and returns the scale. The
 * block's `n` elements are `src[at + i * step]`; they are read again only in the rare cases the bit
 * patterns cannot settle: a NaN (ignored, as a float compare ignores it) or x and −x tying for the
 * largest magnitude (the first one decides the scale's sign).
 */
function blockParams(q: BlockQuantized, bi: number, src: Float32Array, at: number, step: number, n: number, pos: number, neg: number): number {
  let lo = 0;
  let hi = 0;
  if (pos > INF_BITS || neg > INF_BITS) {
    for (let i = 0; i < n; i++) {
      const x = src[at + i * step]!;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  } else {
    if (pos !== 0) hi = bitsToFloat(pos);
    if (neg !== 0) lo = -bitsToFloat(neg);
  }
  let scale: number;
  let zp: number;
  if (q.symmetric) {
    let extreme = hi > -lo ? hi : -lo > hi ? lo : 0;
    if (hi !== 0 && hi === -lo) {
      for (let i = 0; i < n; i++) {
        const x = src[at + i * step]!;
        if (x === hi || x === lo) {
          extreme = x;
          break;
        }
      }
    }
    zp = 8;
    scale = Math.fround(-extreme / 8);
  } else {
    scale = Math.fround((hi - lo) / 15);
    zp = scale === 0 ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
  }
  q.scales[bi] = scale;
  q.zeroPoints[bi] = zp;
  return scale;
}

function bitsToFloat(b: number): number {
  I32[0] = b;
  return F32[0]!;
}

/**
 * The 4-bit code of `x`: Math.round(x / scale) + zp clamped to 0..15 (a NaN gives 0). Math.round (ties
 * toward +∞) is computed as ties-to-even (ROUNDING_MAGIC) plus one on the ties that went down: Math.round
 * itself costs 10 ns per element in V8 on x64 (measured). |x / scale| stays within a few times 15 (the
 * scale comes from this block's range), far below 2^51.
 */
function code4(x: number, scale: number, zp: number): number {
  const v = x / scale;
  let r = v + ROUNDING_MAGIC - ROUNDING_MAGIC;
  if (v - r === 0.5) r += 1;
  const c = r + zp;
  return c < 0 ? 0 : c > 15 ? 15 : c;
}

/**
 * MatMulNBits packed `zero_points`: uint8 [N, ceil(kBlocks / 2)]. Each row is padded to whole bytes on
 * its own (unlike an ONNX uint4 tensor, which packs across rows): block b of row n is nibble b % 2 of
 * byte `n * ceil(kBlocks / 2) + floor(b / 2)`.
 */
export function packMatMulNBitsZeroPoints(q: BlockQuantized): Uint8Array {
  const perRow = Math.ceil(q.kBlocks / 2);
  const out = new Uint8Array(q.rows * perRow);
  for (let r = 0; r < q.rows; r++) {
    for (let b = 0; b < q.kBlocks; b++) {
      const z = q.zeroPoints[r * q.kBlocks + b]!;
      out[r * perRow + (b >> 1)] |= b & 1 ? z << 4 : z;
    }
  }
  return out;
}

/** Code of element `k` of vector `r` (k < len). */
export function codeAt(q: BlockQuantized, r: number, k: number): number {
  const e = r * q.kBlocks * q.blockSize + k; // vector r's padded codes, then element k
  const byte = q.packed[e >> 1]!;
  return e & 1 ? byte >> 4 : byte & 0x0f;
}

