/**
 * Summary statistics for latency samples: percentiles by linear interpolation between closest ranks
 * (the definition NumPy uses by default, "type 7"), mean and sample standard deviation.
 */
import { FrugalError } from '../errors.js';

/**
 * The p-th percentile (0 ≤ p ≤ 100) of values sorted ascending: position h = (n − 1)·p/100, then linear
 * interpolation between the values at floor(h) and ceil(h). Throws on an empty list.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new FrugalError('E_USAGE', 'percentile of an empty list');
  if (!(p >= 0 && p <= 100)) throw new FrugalError('E_USAGE', `percentile must be in [0, 100], got ${p}`);
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export interface SampleStats {
  count: number;
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator; 0 for a single sample). */
  stddev: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
}

/** Count, mean, spread and percentiles of a non-empty list (the input is not modified). */
export function summarize(values: ArrayLike<number>): SampleStats {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const n = sorted.length;
  if (n === 0) throw new FrugalError('E_USAGE', 'cannot summarize an empty list of samples');
  let sum = 0;
  for (const v of sorted) sum += v;
  const mean = sum / n;
  let sq = 0;
  for (const v of sorted) sq += (v - mean) ** 2;
  return {
    count: n,
    mean,
    stddev: n > 1 ? Math.sqrt(sq / (n - 1)) : 0,
    min: sorted[0]!,
    max: sorted[n - 1]!,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
  };
}

/** The median of a non-empty list. */
export function median(values: ArrayLike<number>): number {
  return percentile(Float64Array.from(values as ArrayLike<number>).sort(), 50);
}

/**
 * The median with a distribution-free ~95% confidence interval: the order statistics at ranks
 * n/2 ∓ 1.96·√n/2 (the normal approximation of the binomial sign test; no assumption about the
 * shape of latency distributions, which are skewed). With few samples the interval widens to the range.
 */
export function medianInterval(values: ArrayLike<number>): { median: number; low: number; high: number } {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const n = sorted.length;
  if (n === 0) throw new FrugalError('E_USAGE', 'median of an empty list');
  const half = 0.98 * Math.sqrt(n);
  const lo = Math.max(0, Math.floor(n / 2 - half) - 1);
  const hi = Math.min(n - 1, Math.ceil(n / 2 + half) - 1);
  return { median: percentile(sorted, 50), low: sorted[lo]!, high: sorted[hi]! };
}
