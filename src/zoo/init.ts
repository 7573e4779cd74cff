/**
 * Weight initialisation for zoo models. bert-base has 110M weights, so filling goes straight into
 * Float32Arrays with an inlined generator (no per-element method calls, no JS number arrays). Each
 * tensor's stream is derived from the model seed and the tensor's name, so a weight does not change
 * when layers are added or reordered.
 */
import { DataType } from '../ir/dtype.js';
import type { GraphBuilder } from '../ir/builder.js';
import type { Value } from '../ir/node.js';

/** 32-bit FNV-1a of a string mixed with a seed. */
function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

/**
 * Fills `out` with N(0, std²) samples: xorshift32 uniforms and the Marsaglia polar method (two normals
 * per accepted pair, no trigonometry). Deterministic for a given (seed, name).
 */
export function fillNormal(out: Float32Array, std: number, seed: number, name: string): Float32Array {
  let s = streamSeed(seed, name);
  const n = out.length;
  let i = 0;
  while (i < n) {
    // Two uniforms in (-1, 1) from xorshift32 (period 2^32 - 1; ample for one tensor's worth of pairs).
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 2147483648 - 1;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const v = (s >>> 0) / 2147483648 - 1;
    const r = u * u + v * v;
    if (r >= 1 || r === 0) continue;
    const f = std * Math.sqrt((-2 * Math.log(r)) / r);
    out[i++] = u * f;
    if (i < n) out[i++] = v * f;
  }
  return out;
}

/** Adds a float32 initializer filled with N(0, std²). */
export function normalWeight(b: GraphBuilder, name: string, dims: number[], std: number, seed: number): Value {
  const n = dims.reduce((a, d) => a * d, 1);
  return b.constant(name, DataType.FLOAT, dims, fillNormal(new Float32Array(n), std, seed, name));
}

/** Adds a float32 initializer filled with `value` (zeros for biases, ones for LayerNorm scales). */
export function filledWeight(b: GraphBuilder, name: string, dims: number[], value: number): Value {
  const n = dims.reduce((a, d) => a * d, 1);
  return b.constant(name, DataType.FLOAT, dims, new Float32Array(n).fill(value));
}

/** He (Kaiming) normal std for a layer followed by ReLU. */
export const heStd = (fanIn: number): number => Math.sqrt(2 / fanIn);
/** Xavier (Glorot) normal std for a linear layer. */
export const xavierStd = (fanIn: number, fanOut: number): number => Math.sqrt(2 / (fanIn + fanOut));
