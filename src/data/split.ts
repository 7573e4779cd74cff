/**
 * Seeded splitting and batching over dataset indices. Every random choice goes through `createRng`, so
 * the same seed gives the same split and the same batch order on every machine and Node version.
 */
import { FrugalError } from '../errors.js';
import { createRng } from '../util/rng.js';

/** Indices of the examples in each side of a train/test split (each list in shuffled order). */
export interface SplitIndices {
  train: number[];
  test: number[];
}

/**
 * Stratified split: every class keeps (as near as integers allow) the same share in test as in the whole
 * set, and the test side holds exactly `testCount` examples. Per-class quotas are the floors of the ideal
 * shares, with the leftover slots going to the largest fractional parts (ties to the lower class id), so
 * the result does not depend on iteration order. Both sides are shuffled afterwards so that consumers
 * reading them in order do not see the examples grouped by class.
 */
export function stratifiedSplit(labels: ArrayLike<number>, testCount: number, seed: number): SplitIndices {
  const n = labels.length;
  if (!Number.isInteger(testCount) || testCount < 0 || testCount > n) {
    throw new FrugalError('E_USAGE', `stratifiedSplit: testCount must be an integer in [0, ${n}], got ${testCount}`);
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    let list = byClass.get(c);
    if (!list) byClass.set(c, (list = []));
    list.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const quota = new Map<number, number>();
  let assigned = 0;
  const remainders: { c: number; frac: number }[] = [];
  for (const c of classes) {
    const ideal = (byClass.get(c)!.length * testCount) / Math.max(n, 1);
    const q = Math.floor(ideal);
    quota.set(c, q);
    assigned += q;
    remainders.push({ c, frac: ideal - q });
  }
  remainders.sort((a, b) => b.frac - a.frac || a.c - b.c);
  for (let k = 0; assigned < testCount; k++, assigned++) {
    const c = remainders[k % remainders.length]!.c;
    quota.set(c, quota.get(c)! + 1);
  }

  const rng = createRng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const c of classes) {
    const members = rng.shuffle(byClass.get(c)!.slice());
    const q = quota.get(c)!;
    for (let k = 0; k < members.length; k++) (k < q ? test : train).push(members[k]!);
  }
  rng.shuffle(train);
  rng.shuffle(test);
  return { train, test };
}

/** Options for {@link batches}. */
export interface BatchOptions {
  /** Shuffle the order of examples (default false: 0, 1, 2, ...). */
  shuffle?: boolean;
  /** Seed for the shuffle (default 0). For a new order every epoch, pass e.g. `baseSeed + epoch`. */
  seed?: number;
  /** Drop the final batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
}

/**
 * Yields the example indices of one epoch in batches of `batchSize` (the last one may be smaller unless
 * `dropLast`). Without `dropLast`, every index in [0, count) appears exactly once.
 */
export function* batches(count: number, batchSize: number, opts: BatchOptions = {}): Generator<number[]> {
  if (!Number.isInteger(count) || count < 0) {
    throw new FrugalError('E_USAGE', `batches: count must be a non-negative integer, got ${count}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new FrugalError('E_USAGE', `batches: batchSize must be a positive integer, got ${batchSize}`);
  }
  const order = Array.from({ length: count }, (_, i) => i);
  if (opts.shuffle) createRng(opts.seed ?? 0).shuffle(order);
  for (let start = 0; start < count; start += batchSize) {
    const end = Math.min(start + batchSize, count);
    if (opts.dropLast && end - start < batchSize) break;
    yield order.slice(start, end);
  }
}
