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
import { ROUNDING_MAGIC } from './common.js';

/** The result of quantizing `rows` vectors of `len` elements block-wise. */
export interface BlockQuantized {
  rows: number;
  len: number;
  blockSize: number;
  kBlocks: number;
  /** Codes 0..15, `rows × kBlocks × blockSize` (padded), vector-major then element order. */
  codes: Uint8Array;
  /** One scale per block, `rows × kBlocks`. */
  scales: Float32Array;
  /** One zero point (0..15) per block, `rows × kBlocks`; all 8 when symmetric. */
  zeroPoints: Uint8Array;
  symmetric: boolean;
}

/**
 * Quantizes `rows` vectors read from `src`: element `k` of vector `r` is `src[r * rowStride + k * elemStride]`
 * (MatMul B [K, N]: rows N, rowStride 1, elemStride N; Gemm transB B [N, K] and Gather tables [V, D]:
 * rowStride len, elemStride 1).
 *
 * Symmetric: the block's element of largest magnitude m maps to code 0 (m = -8 · scale, so scale =
 * -m / 8): all 16 levels are used and the extreme is exact. Asymmetric: the range [min(0, lo), max(0, hi)]
 * maps onto 0..15 with an integer zero point; zero is always in range because a uint4 zero point can only
 * express ranges that contain it.
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
  const codes = new Uint8Array(rows * kBlocks * blockSize);
  const scales = new Float32Array(rows * kBlocks);
  const zeroPoints = new Uint8Array(rows * kBlocks);
  const q: BlockQuantized = { rows, len, blockSize, kBlocks, codes, scales, zeroPoints, symmetric };
  if (elemStride === 1) {
    // Vectors are contiguous: quantize every block in place.
    for (let r = 0; r < rows; r++) for (let b = 0; b < kBlocks; b++) quantizeBlock(src, r * rowStride + b * blockSize, Math.min(blockSize, len - b * blockSize), q, r * kBlocks + b);
    return q;
  }
  // Strided vectors (MatMul B [K, N]: a vector is a column). Reading a column element by element
  // touches one cache line per element; instead, copy the rows of one block band into a tile where
  // each vector's block is contiguous (reads in memory order), then quantize the tile.
  const tileRows = Math.max(1, Math.min(rows, Math.floor(16384 / blockSize)));
  const tile = new Float32Array(tileRows * blockSize);
  for (let r0 = 0; r0 < rows; r0 += tileRows) {
    const nr = Math.min(tileRows, rows - r0);
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * blockSize;
      const n = Math.min(blockSize, len - k0);
      for (let i = 0; i < n; i++) {
        const base = r0 * rowStride + (k0 + i) * elemStride;
        for (let j = 0; j < nr; j++) tile[j * blockSize + i] = src[base + j * rowStride]!;
      }
      for (let j = 0; j < nr; j++) quantizeBlock(tile, j * blockSize, n, q, (r0 + j) * kBlocks + b);
    }
  }
  return q;
}

/**
 * Quantizes the `n` contiguous elements src[at..at+n) as block `bi` of `q` (see `quantizeBlockwise` for
 * the scale and zero point rules); codes past `n` (padding) get the zero point.
 */
function quantizeBlock(src: Float32Array, at: number, n: number, q: BlockQuantized, bi: number): void {
  let lo = 0;
  let hi = 0;
  for (let i = at, end = at + n; i < end; i++) {
    const x = src[i]!;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  // The element of largest magnitude, the first one when x and −x tie (so its sign decides the scale's);
  // 0 when every element is ±0 or NaN.
  let extreme = hi > -lo ? hi : -lo > hi ? lo : 0;
  if (hi !== 0 && hi === -lo) {
    for (let i = at, end = at + n; i < end; i++) {
      if (src[i] === hi || src[i] === lo) {
        extreme = src[i]!;
        break;
      }
    }
  }
  let scale: number;
  let zp: number;
  if (q.symmetric) {
    zp = 8;
    scale = Math.fround(-extreme / 8);
  } else {
    scale = Math.fround((hi - lo) / 15);
    zp = scale === 0 ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
  }
  q.scales[bi] = scale;
  q.zeroPoints[bi] = zp;
  const codes = q.codes;
  const out = bi * q.blockSize;
  // Padding (i >= n) stays at the zero-point code: it dequantizes to exactly 0. So does everything in
  // an all-zero block (scale 0).
  const m = scale === 0 ? 0 : n;
  for (let i = 0; i < m; i++) {
    // Math.round (ties toward +∞), computed as ties-to-even (ROUNDING_MAGIC) plus one on the ties that
    // went down: Math.round itself costs 10 ns per element in V8 on x64 (measured).
    // |v| stays within a few times 15 (the scale comes from this block's range), far below 2^51.
    const v = src[at + i]! / scale;
    let r = v + ROUNDING_MAGIC - ROUNDING_MAGIC;
    if (v - r === 0.5) r += 1;
    const c = r + zp;
    codes[out + i] = c < 0 ? 0 : c > 15 ? 15 : c;
  }
  if (m < q.blockSize) codes.fill(zp, out + m, out + q.blockSize); // a builtin call costs more than a block
}

/**
 * MatMulNBits `B`: uint8 [N, kBlocks, blockSize / 2]; within a block, element 2j is the low nibble of
 * byte j and element 2j+1 the high nibble. This is exactly `codes` packed two per byte.
 */
export function packMatMulNBitsWeight(q: BlockQuantized): Uint8Array {
  const codes = q.codes;
  const out = new Uint8Array(codes.length / 2);
  for (let i = 0, n = out.length; i < n; i++) out[i] = codes[2 * i]! | (codes[2 * i + 1]! << 4);
  return out;
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

/**
 * Packs values as an ONNX 4-bit tensor (row-major over the whole tensor, element 2i in the low nibble of
 * byte i). `value(i)` gives the nibble of flat element i (already masked or in range).
 */
export function packNibbles(count: number, value: (i: number) => number): Uint8Array {
  const out = new Uint8Array(Math.ceil(count / 2));
  for (let i = 0; i < count; i++) {
    const nib = value(i) & 0x0f;
    out[i >> 1] |= i & 1 ? nib << 4 : nib;
  }
  return out;
}

/** Code of element `k` of vector `r` (k < len). */
export function codeAt(q: BlockQuantized, r: number, k: number): number {
  return q.codes[(r * q.kBlocks + Math.floor(k / q.blockSize)) * q.blockSize + (k % q.blockSize)]!;
}

/** The dequantized value of element `k` of vector `r`: (code - zero point) × scale, in float32. */
export function dequantizedAt(q: BlockQuantized, r: number, k: number): number {
  const bi = r * q.kBlocks + Math.floor(k / q.blockSize);
  return Math.fround((codeAt(q, r, k) - q.zeroPoints[bi]!) * q.scales[bi]!);
}
