/**
 * Unstructured pruning: zero the smallest-magnitude weights. Three forms:
 * - magnitude, per layer (each prunable weight loses `sparsity` of its entries) or global (one |w|
 *   threshold over every prunable weight, so layers with many small weights lose more);
 * - N:M (2:4 by default): in every group of M consecutive weights along the reduction axis keep the
 *   N largest, the pattern sparse tensor cores on NVIDIA GPUs (Ampere and later) run at up to 2×;
 * - gradual: the sparsity target follows Zhu & Gupta's (2017) cubic schedule over fine-tuning steps
 *   (`polynomialSparsity`), the masks recomputed from the trained weights at each pruning step.
 *
 * Zeroed weights stay dense tensors: dense CPU kernels multiply by the zeros, so none of this is faster on
 * a CPU (ONNX Runtime has no sparse dense-input kernels); it shrinks a compressed or sparse-stored file.
 */
import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import type { Pass, PassResult } from '../pass.js';
import { countZeros, findPrunableWeights, type PrunableWeight, readFloats, writeFloats } from './weights.js';

/** Pruning masks by weight (initializer) name: 1 keeps the weight, 0 prunes it. */
export type Masks = Map<string, Uint8Array>;

export interface MagnitudeOptions {
  /** Fraction of prunable weights to zero, in [0, 1). */
  sparsity: number;
  /** `layer` (default): each weight loses `sparsity` of its entries; `global`: one threshold for all. */
  scope?: 'layer' | 'global';
  /** Initializer names to leave dense. */
  exclude?: readonly string[];
  /** Prune embedding tables (Gather data) too (default false). */
  embeddings?: boolean;
}

export interface NMOptions {
  /** Weights kept per group (default 2). */
  n?: number;
  /** Group size along the reduction axis (default 4). */
  m?: number;
  exclude?: readonly string[];
  embeddings?: boolean;
}

/** Throws E_USAGE unless 0 ≤ sparsity < 1. */
export function checkSparsity(sparsity: number, flag = 'sparsity'): void {
  if (!(Number.isFinite(sparsity) && sparsity >= 0 && sparsity < 1)) throw new FrugalError('E_USAGE', `--${flag} must be in [0, 1), got ${sparsity}`);
}

/** Throws E_USAGE unless 0 < N < M. */
export function checkPattern(n: number, m: number): void {
  if (!(Number.isInteger(n) && Number.isInteger(m) && n >= 1 && m >= 2 && n < m)) throw new FrugalError('E_USAGE', `--pattern N:M needs integers 0 < N < M, got ${n}:${m}`);
}

/** Parses `2:4`. */
export function parsePattern(s: string): { n: number; m: number } {
  const m = /^(\d+):(\d+)$/.exec(s.trim());
  if (!m) throw new FrugalError('E_USAGE', `--pattern must look like N:M (e.g. 2:4), got '${s}'`);
  const r = { n: Number(m[1]), m: Number(m[2]) };
  checkPattern(r.n, r.m);
  return r;
}

function selected(model: Model, exclude: readonly string[] = [], embeddings = false): ReturnType<typeof findPrunableWeights> {
  const found = findPrunableWeights(model, { embeddings });
  const ex = new Set(exclude);
  found.weights = found.weights.filter((w) => !ex.has(w.value.name) && !w.nodes.some((n) => ex.has(n.name)));
  if (!found.weights.length) {
    const why = found.skipped.length ? `; skipped: ${found.skipped.slice(0, 3).map((s) => `${s.tensor} (${s.reason})`).join(', ')}` : '';
    throw new FrugalError('E_UNSUPPORTED', `the model has nothing prunable: no float32 constant weight read by MatMul, Gemm or Conv${why}`);
  }
  return found;
}

/** Zeros the `k` smallest |a| entries of each array in `arrays` jointly (ties broken by position). */
function maskSmallest(arrays: Float32Array[], k: number): Uint8Array[] {
  const masks = arrays.map((a) => new Uint8Array(a.length).fill(1));
  if (k <= 0) return masks;
  const total = arrays.reduce((s, a) => s + a.length, 0);
  const all = new Float32Array(total);
  let o = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) all[o++] = Math.abs(a[i]!);
  all.sort();
  const threshold = all[k - 1]!;
  let below = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (Math.abs(a[i]!) < threshold) below++;
  let ties = k - below;
  arrays.forEach((a, j) => {
    const m = masks[j]!;
    for (let i = 0; i < a.length; i++) {
      const x = Math.abs(a[i]!);
      if (x < threshold) m[i] = 0;
      else if (x === threshold && ties > 0) {
        m[i] = 0;
        ties--;
      }
    }
  });
  return masks;
}

/**
 * Magnitude masks over named weight arrays (the trainer's live weights during gradual pruning): each
 * array loses `sparsity` of its entries (`layer`), or one threshold covers them all (`global`).
 */
export function masksFromArrays(arrays: ReadonlyMap<string, Float32Array>, sparsity: number, scope: 'layer' | 'global' = 'layer'): Masks {
  const names = [...arrays.keys()];
  const list = names.map((n) => arrays.get(n)!);
  const masks: Masks = new Map();
  if (scope === 'global') {
    const total = list.reduce((s, a) => s + a.length, 0);
    maskSmallest(list, Math.round(sparsity * total)).forEach((m, i) => masks.set(names[i]!, m));
  } else {
    list.forEach((a, i) => masks.set(names[i]!, maskSmallest([a], Math.round(sparsity * a.length))[0]!));
  }
  return masks;
}

/** Magnitude masks for the model's prunable weights (the model is not changed). */
export function magnitudeMasks(model: Model, opts: MagnitudeOptions): Masks {
  checkSparsity(opts.sparsity);
  const { weights } = selected(model, opts.exclude, opts.embeddings);
  return masksFromArrays(new Map(weights.map((w) => [w.value.name, readFloats(w.value)])), opts.sparsity, opts.scope);
}

/** N:M masks: in each group of M along the reduction axis the N largest |w| are kept. */
export function nmMasks(model: Model, opts: NMOptions = {}): { masks: Masks; skipped: Array<{ tensor: string; reason: string }> } {
  const n = opts.n ?? 2;
  const m = opts.m ?? 4;
  checkPattern(n, m);
  const { weights } = selected(model, opts.exclude, opts.embeddings);
  const masks: Masks = new Map();
  const skipped: Array<{ tensor: string; reason: string }> = [];
  const idx = new Array<number>(m);
  for (const w of weights) {
    if (w.reduce % m !== 0) {
      skipped.push({ tensor: w.value.name, reason: `reduction length ${w.reduce} is not a multiple of ${m}` });
      continue;
    }
    const a = readFloats(w.value);
    const mask = new Uint8Array(a.length).fill(1);
    forEachGroup(w, m, (at, stride) => {
      for (let j = 0; j < m; j++) idx[j] = at + j * stride;
      // Smallest first; stable for ties, so the earlier of equal weights is pruned.
      idx.sort((p, q) => Math.abs(a[p]!) - Math.abs(a[q]!) || p - q);
      for (let j = 0; j < m - n; j++) mask[idx[j]!] = 0;
    });
    masks.set(w.value.name, mask);
  }
  return { masks, skipped };
}

/** Calls `f(firstIndex, stride)` for each group of `m` consecutive elements along the reduction axis. */
function forEachGroup(w: PrunableWeight, m: number, f: (at: number, stride: number) => void): void {
  for (let o = 0; o < w.outer; o++) for (let r = 0; r < w.reduce; r += m) for (let i = 0; i < w.inner; i++) f((o * w.reduce + r) * w.inner + i, w.inner);
}

/** Multiplies the named initializers by their masks in place (pruned entries become exact zeros). */
export function applyMasks(model: Model, masks: Masks): void {
  for (const [name, mask] of masks) {
    const v = model.graph.values.get(name);
    if (!v?.initializer) throw new FrugalError('E_USAGE', `mask for '${name}': the model has no such initializer`);
    const a = Float32Array.from(readFloats(v));
    if (a.length !== mask.length) throw new FrugalError('E_USAGE', `mask for '${name}' has ${mask.length} entries, the weight ${a.length}`);
    for (let i = 0; i < a.length; i++) if (!mask[i]) a[i] = 0;
    writeFloats(v, a);
  }
}

export interface SparsityLayer {
  tensor: string;
  node: string;
  params: number;
  zeros: number;
  sparsity: number;
  /** For M = 4, 8, 16 (when the reduction length allows): the most nonzeros in any group of M. */
  maxNonZerosPer: Record<string, number>;
}

export interface SparsityReport {
  /** Exact zeros among all prunable weights, as a fraction. */
  sparsity: number;
  params: number;
  zeros: number;
  layers: SparsityLayer[];
  /** Patterns N:M (M = 4, 8, 16) that every prunable weight satisfies, tightest N per M (e.g. `2:4`). */
  patterns: string[];
}

/**
 * The checker: sparsity of every prunable weight of any model, and the N:M patterns it follows (a
 * weight satisfies N:M when no group of M along its reduction axis holds more than N nonzeros).
 */
export function sparsityReport(model: Model, opts: { embeddings?: boolean } = {}): SparsityReport {
  const { weights } = findPrunableWeights(model, opts);
  const layers: SparsityLayer[] = [];
  const worst: Record<string, number> = { 4: 0, 8: 0, 16: 0 };
  for (const w of weights) {
    const a = readFloats(w.value);
    const maxNonZerosPer: Record<string, number> = {};
    for (const m of [4, 8, 16]) {
      if (w.reduce % m !== 0) {
        worst[m] = Infinity;
        continue;
      }
      let most = 0;
      forEachGroup(w, m, (at, stride) => {
        let nz = 0;
        for (let j = 0; j < m; j++) if (a[at + j * stride] !== 0) nz++;
        if (nz > most) most = nz;
      });
      maxNonZerosPer[m] = most;
      worst[m] = Math.max(worst[m]!, most);
    }
    const zeros = countZeros(a);
    layers.push({ tensor: w.value.name, node: w.nodes[0]!.name, params: a.length, zeros, sparsity: a.length ? zeros / a.length : 0, maxNonZerosPer });
  }
  const params = layers.reduce((s, l) => s + l.params, 0);
  const zeros = layers.reduce((s, l) => s + l.zeros, 0);
  const patterns = layers.length ? [4, 8, 16].filter((m) => worst[m]! < m).map((m) => `${worst[m]}:${m}`) : [];
  return { sparsity: params ? zeros / params : 0, params, zeros, layers, patterns };
}

/** Throws E_INVALID_MODEL naming the first weight that breaks the N:M pattern. */
export function checkNMPattern(model: Model, n: number, m: number): void {
  const { weights } = findPrunableWeights(model);
  for (const w of weights) {
    if (w.reduce % m !== 0) continue;
    const a = readFloats(w.value);
    forEachGroup(w, m, (at, stride) => {
      let nz = 0;
      for (let j = 0; j < m; j++) if (a[at + j * stride] !== 0) nz++;
      if (nz > n) throw new FrugalError('E_INVALID_MODEL', `weight '${w.value.name}' breaks ${n}:${m}: a group at element ${at} has ${nz} nonzeros`);
    });
  }
}

/**
 * Zhu & Gupta's gradual schedule: s(t) = s_f + (s_i − s_f)·(1 − (t − t0)/(t1 − t0))³ for t0 ≤ t ≤ t1,
 * s_i before and s_f after. Pruning fast early (when redundant weights abound) and slowly near the target.
 */
export function polynomialSparsity(step: number, s: { initial?: number; final: number; beginStep?: number; endStep: number }): number {
  const si = s.initial ?? 0;
  const t0 = s.beginStep ?? 0;
  if (step <= t0) return si;
  if (step >= s.endStep) return s.final;
  const f = 1 - (step - t0) / (s.endStep - t0);
  return s.final + (si - s.final) * f * f * f;
}

function maskStats(model: Model, masks: Masks, extra: Record<string, unknown>, embeddings = false): PassResult {
  applyMasks(model, masks);
  const report = sparsityReport(model, { embeddings });
  return {
    model,
    modified: true,
    stats: {
      ...extra,
      sparsity: report.sparsity,
      prunableParams: report.params,
      zeros: report.zeros,
      patterns: report.patterns,
      layers: report.layers.map((l) => ({ tensor: l.tensor, sparsity: Number(l.sparsity.toFixed(4)) })),
      note: 'unstructured zeros are stored densely: no speedup with dense CPU kernels',
    },
  };
}

/** One-shot magnitude pruning as a pass. */
export function magnitudePrunePass(opts: MagnitudeOptions): Pass {
  checkSparsity(opts.sparsity);
  return {
    name: 'prune-magnitude',
    run(model) {
      const masks = magnitudeMasks(model, opts);
      return maskStats(model, masks, { target: opts.sparsity, scope: opts.scope ?? 'layer', skipped: findPrunableWeights(model).skipped }, opts.embeddings);
    },
  };
}

/** N:M pruning as a pass. */
export function nmPrunePass(opts: NMOptions = {}): Pass {
  checkPattern(opts.n ?? 2, opts.m ?? 4);
  return {
    name: 'prune-nm',
    run(model) {
      const { masks, skipped } = nmMasks(model, opts);
      if (!masks.size) throw new FrugalError('E_UNSUPPORTED', `no prunable weight has a reduction length divisible by ${opts.m ?? 4}: ${skipped.map((s) => s.tensor).join(', ')}`);
      return maskStats(model, masks, { pattern: `${opts.n ?? 2}:${opts.m ?? 4}`, skipped, note2: 'N:M speed comes from sparse tensor cores on GPUs, not from a CPU' }, opts.embeddings);
    },
  };
}
