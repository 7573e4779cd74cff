/**
 * Bit-level packing of element types that JavaScript has no native array for: float16 and bfloat16
 * (stored as Uint16Array bit patterns) and 4-bit integers (two per byte, low nibble first, as the ONNX
 * spec packs them). Conversions round to nearest, ties to even, as IEEE 754 and numpy do; NaN stays
 * NaN (quiet, payload kept where it fits), infinities stay infinite, and subnormals are exact.
 */

// Reinterpreting views are created per call over the caller's buffer so that no per-element
// DataView calls are needed; Float32Array and Uint32Array share alignment, so the view is always valid.
function bitsOf(src: Float32Array): Uint32Array {
  return new Uint32Array(src.buffer, src.byteOffset, src.length);
}

/** Rounds one float32 bit pattern to the nearest float16 bit pattern (ties to even). */
export function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Keep NaN a NaN even when its payload lives only in the low 13 bits that float16 drops.
    if (mant !== 0) return sign | 0x7e00 | (mant >>> 13);
    return sign | 0x7c00;
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal float16 (or zero). Below half the smallest subnormal (2^-25) everything rounds to zero;
    // exactly 2^-25 is a tie that rounds to the even pattern, zero.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    // A carry out of the mantissa yields 0x0400, the smallest normal: the encoding is continuous.
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  // A carry may ripple into the exponent; reaching 0x7c00 is the correct overflow to infinity.
  return sign | half;
}

let f16Table: Float32Array | undefined;

/** All 65,536 float16 patterns decoded once (256 KiB): decoding becomes one table read per element. */
function float16Table(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      // Subnormal (or signed zero: -0 × 2^-24 is -0): mant × 2^-24 is exact in float32.
      table[h] = (sign ? -mant : mant) * 2 ** -24;
    } else if (exp === 0x1f) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return (f16Table = table);
}

/** Converts float32 values to float16 bit patterns, rounding to nearest even. */
export function float32ToFloat16Bits(src: Float32Array | ArrayLike<number>): Uint16Array {
  const f32 = src instanceof Float32Array ? src : Float32Array.from(src);
  const bits = bitsOf(f32);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float32BitsToFloat16Bits(bits[i]!);
  return out;
}

/** Converts float16 bit patterns to float32 values (exact: every float16 is a float32). */
export function float16BitsToFloat32Array(src: Uint16Array): Float32Array {
  const table = float16Table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

/** Rounds one float32 bit pattern to bfloat16 (its top 16 bits), ties to even; NaN stays quiet NaN. */
export function float32BitsToBfloat16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  // Plain double arithmetic: bits + 0x8000 never exceeds 2^32 for a non-NaN pattern, so no overflow.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts float32 values to bfloat16 bit patterns, rounding to nearest even. */
export function float32ToBfloat16Bits(src: Float32Array | ArrayLike<number>): Uint16Array {
  const f32 = src instanceof Float32Array ? src : Float32Array.from(src);
  const bits = bitsOf(f32);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float32BitsToBfloat16Bits(bits[i]!);
  return out;
}

/** Converts bfloat16 bit patterns to float32 values (exact: bfloat16 is truncated float32). */
export function bfloat16BitsToFloat32Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/**
 * Packs 4-bit integers two per byte, element 2i in the low nibble of byte i (ONNX's order). Values are
 * masked to 4 bits; callers clamp to [-8, 7] (int4) or [0, 15] (uint4) first.
 */
export function packInt4(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    const nib = values[i]! & 0x0f;
    out[i >> 1] |= i & 1 ? nib << 4 : nib;
  }
  return out;
}

/** Unpacks `count` 4-bit integers; `signed` sign-extends each nibble (int4) instead of uint4. */
export function unpackInt4(packed: Uint8Array, count: number, signed: boolean): Int8Array | Uint8Array {
  const out = signed ? new Int8Array(count) : new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const byte = packed[i >> 1]!;
    const nib = i & 1 ? byte >>> 4 : byte & 0x0f;
    out[i] = signed && nib >= 8 ? nib - 16 : nib;
  }
  return out;
}
