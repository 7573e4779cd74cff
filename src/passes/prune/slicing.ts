/**
 * Slicing helpers for structured pruning: which indices a set of kept channels covers, and a float
 * tensor restricted to indices along one axis. Plus the check shared by every ratio flag.
 */
import { FrugalError } from '../../errors.js';

/** Indices [c·block, (c+1)·block) for each kept channel c. */
export function expandKeep(keep: readonly number[], block: number): number[] {
  const out: number[] = [];
  for (const c of keep) for (let j = 0; j < block; j++) out.push(c * block + j);
  return out;
}

/** `data` (row-major `dims`) restricted to `index` along `axis`. */
export function gatherAxis(data: Float32Array, dims: readonly number[], axis: number, index: readonly number[]): { data: Float32Array; dims: number[] } {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = dims[axis]!;
  const out = new Float32Array(outer * index.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < index.length; k++) {
      const src = (o * n + index[k]!) * inner;
      out.set(data.subarray(src, src + inner), (o * index.length + k) * inner);
    }
  }
  const nd = [...dims];
  nd[axis] = index.length;
  return { data: out, dims: nd };
}

/** Throws E_USAGE unless 0 ≤ ratio < 1 (a ratio of 1 would remove every channel). */
export function checkRatio(ratio: number): void {
  if (!(Number.isFinite(ratio) && ratio >= 0 && ratio < 1)) {
    throw new FrugalError('E_USAGE', `--ratio must be in [0, 1) (the fraction of channels, units or heads to remove; 1 would remove every one), got ${ratio}`);
  }
}
