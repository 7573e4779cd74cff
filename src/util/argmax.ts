/** Index (0..n-1) of the largest of the `n` values at `offset`; the first one on ties; NaNs never win. */
export function argmax(a: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (a[offset + c]! > a[offset + best]!) best = c;
  return best;
}
