/**
 * An efficiency rating in the spirit of Hugging Face's AI Energy Score: energy per 1,000 inferences
 * and 1 to 5 stars relative to the models compared in the same run.
 *
 * Definition. An inference is one item of a batch (a run at batch 8 is 8 inferences). For each model
 * i with energy per 1,000 inferences E_i (Wh), let lo = min E and hi = max E over the compared models
 * with a figure. If hi ≤ 1.01·lo (all within 1%), every model gets 5. Otherwise each model's position
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

/** Ratings (5 best … 1 worst) for energies per 1,000 inferences; null entries stay null. */
export function rateEnergies(energies: ReadonlyArray<number | null>): Array<number | null> {
  const known = energies.filter((e): e is number => e !== null && Number.isFinite(e) && e > 0);
  if (known.length < 2) return energies.map(() => null);
  const lo = Math.min(...known);
  const hi = Math.max(...known);
  return energies.map((e) => {
    if (e === null || !Number.isFinite(e) || e <= 0) return null;
    if (hi <= lo * 1.01) return 5;
    const x = Math.round((Math.log(e / lo) / Math.log(hi / lo)) * 1e9) / 1e9;
    return 5 - Math.min(4, Math.floor(5 * x));
  });
}
