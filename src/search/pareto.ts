/**
 * The accuracy/cost Pareto front: a candidate is on the front when no other candidate is at least as
 * accurate and at most as costly, and strictly better in one of the two. Candidates without both
 * figures are never on the front (they cannot be compared).
 */
export interface ParetoPoint {
  accuracy: number | null;
  cost: number | null;
}

export function paretoFront(points: readonly ParetoPoint[]): boolean[] {
  return points.map((p, i) => {
    if (p.accuracy === null || p.cost === null) return false;
    return !points.some((q, j) => j !== i && q.accuracy !== null && q.cost !== null && q.accuracy >= p.accuracy! && q.cost <= p.cost! && (q.accuracy > p.accuracy! || q.cost < p.cost!));
  });
}
