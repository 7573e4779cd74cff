/**
 * An efficiency rating in the spirit of Hugging Face's AI Energy Score: energy per 1,000 inferences
 * and 1 to 5 stars relative to the models compared in the same run.
 *
 * Definition. An inference is one item of a batch (a run at batch 8 is 8 inferences). For each model
 * i with energy per 1,000 inferences E_i (Wh), let lo = min E and hi = max E over the compared models
 * with a figure, and t the noise tolerance (default 10%: identical models profiled one after the other
 * on a shared machine differ by that much). If hi ≤ (1 + t)·lo, the models cannot be separated and every
 * model gets 5. A model within t of the best gets 5 and one within t of the worst gets 1, so that two
 * copies of one model never land in different bands by noise alone. Otherwise each model's position
 * on a logarithmic scale is x_i = ln(E_i / lo) / ln(hi / lo), in [0, 1], rounded to 9 decimals, and
 *
 *   rating_i = 5 − min(4, floor(5 · x_i))
 *
 * so the most efficient model gets 5, the least efficient 1, and the range between them is cut into
 * five equal bands of log-energy with boundaries at x = 0.2, 0.4, 0.6 and 0.8 (a model exactly on a
 * boundary gets the lower rating: x = 0.2 → 4). A log scale is used because models differ by factors,
 * not by fixed amounts. Ratings need at least two models with an energy figure (otherwise null), and
 * compare like with like only when all figures share a source (all measured by the same meter, or
 * all estimated), which holds within one `frugal profile` run. Unlike the AI Energy Score, which
 * rates against a fixed leaderboard of models per task on an NVIDIA H100, this rating is relative to
 * the compared set: adding a model can change the others' stars.
 */

/** Wh per 1,000 inferences from joules per inference. */
export const whPer1000 = (joulesPerInference: number): number => (joulesPerInference * 1000) / 3600;

/** Relative differences in energy that the rating treats as noise (see the module comment). */
export const RATING_NOISE_TOLERANCE = 0.1;

/**
 * The tolerance for a set of profiles: the 10% floor, or twice the largest relative 95% half-width of a
 * model's mean latency (1.96·sd/(mean·√n)): energy is estimated or measured over the same runs, so it
 * is at least as uncertain as their mean duration.
 */
export function ratingTolerance(latencies: ReadonlyArray<{ mean: number; stddev: number; count: number }>): number {
  let u = 0;
  for (const l of latencies) if (l.mean > 0 && l.count > 0) u = Math.max(u, (1.96 * l.stddev) / (l.mean * Math.sqrt(l.count)));
  return Math.max(RATING_NOISE_TOLERANCE, 2 * u);
}

/** True when every energy is within `tolerance` of the lowest: the rating cannot tell the models apart. */
export function energiesInseparable(energies: ReadonlyArray<number | null>, tolerance = RATING_NOISE_TOLERANCE): boolean {
  const known = energies.filter((e): e is number => e !== null && Number.isFinite(e) && e > 0);
  return known.length >= 2 && Math.max(...known) <= Math.min(...known) * (1 + tolerance);
}

/** Ratings (5 best … 1 worst) for energies per 1,000 inferences; null entries stay null. */
export function rateEnergies(energies: ReadonlyArray<number | null>, tolerance = RATING_NOISE_TOLERANCE): Array<number | null> {
  const known = energies.filter((e): e is number => e !== null && Number.isFinite(e) && e > 0);
  if (known.length < 2) return energies.map(() => null);
  const lo = Math.min(...known);
  const hi = Math.max(...known);
  return energies.map((e) => {
    if (e === null || !Number.isFinite(e) || e <= 0) return null;
    if (e <= lo * (1 + tolerance)) return 5;
    if (e * (1 + tolerance) >= hi) return 1;
    const x = Math.round((Math.log(e / lo) / Math.log(hi / lo)) * 1e9) / 1e9;
    return 5 - Math.min(4, Math.floor(5 * x));
  });
}
