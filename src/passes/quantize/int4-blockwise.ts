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
  const block = new Float32Array(blockSize);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * blockSize;
      const n = Math.min(blockSize, len - k0);
      let lo = 0;
      let hi = 0;
      let extreme = 0;
      for (let i = 0; i < n; i++) {
        const x = src[r * rowStride + (k0 + i) * elemStride]!;
        block[i] = x;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
        if (Math.abs(x) > Math.abs(extreme)) extreme = x;
      }
      const bi = r * kBlocks + b;
      const out = bi * blockSize;
      let scale: number;
      let zp: number;
      if (symmetric) {
        zp = 8;
        scale = Math.fround(-extreme / 8);
      } else {
        scale = Math.fround((hi - lo) / 15);
        zp = scale === 0 ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
      }
      scales[bi] = scale;
      zeroPoints[bi] = zp;
      // Padding (i >= n) stays at the zero-point code: it dequantizes to exactly 0.
      for (let i = 0; i < blockSize; i++) {
        if (i >= n || scale === 0) {
          codes[out + i] = zp;
          continue;
        }
        const q = Math.round(block[i]! / scale) + zp;
        codes[out + i] = q < 0 ? 0 : q > 15 ? 15 : q;
      }
    }
  }
  return { rows, len, blockSize, kBlocks, codes, scales, zeroPoints, symmetric };
}

/**
 * MatMulNBits `B`: uint8 [N, kBlocks, blockSize / 2]; within a block, element 2j is the low nibble of
 * byte j and element 2j+1 the high nibble. This is exactly `codes` packed two per byte.
 */
export function packMatMulNBitsWeight(q: BlockQuantized): Uint8Array {
  const out = new Uint8Array(q.codes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = q.codes[2 * i]! | (q.codes[2 * i + 1]! << 4);
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
