/**
 * Calibration: the real-valued range of activation tensors, measured by running the float model in
 * ONNX Runtime on real inputs with the tensors added as extra graph outputs. The statistics are
 * gathered in JS, which is O(activation elements) per batch: bookkeeping, not model arithmetic.
 *
 * Methods:
 * - `minmax`: the observed minimum and maximum (exact for the calibration data, outlier-sensitive).
 * - `percentile`: clip |x| at the given percentile (default 99.999) of a histogram of |x|.
 * - `entropy`: the clipping threshold whose 128-level quantized histogram diverges least (KL) from the
 *   observed one, TensorRT's method ("8-bit Inference with TensorRT", Migacz 2017) as ORT's calibrator
 *   also implements it.
 * Histogram methods run two passes: the first finds max|x| per tensor, the second fills a histogram of
 * |x| with fixed bins over [0, max|x|], so the result does not depend on batch order. A threshold t
 * becomes the range [max(min, −t), min(max, t)].
 */
import { requiredInputs } from '../../ir/summary.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { batches } from '../../data/index.js';
import { DataType, dataTypeName } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Tensor } from '../../ir/tensor.js';
import { inferShapes } from '../../ir/shape-inference.js';
import { elemTypeOf, tensorType } from '../../ir/types.js';
import { decodeModel, encodeModelToBytes } from '../../onnx/index.js';
import { createSession, feedsFromFiles } from '../../runtime/index.js';
import { fromOrtTensor } from '../../runtime/tensors.js';
import { openDatasetFeed } from '../../data/feed.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

/** Calibration inputs: feed batches (model input name → tensor), read once per pass. */
export interface CalibrationData {
  batches: ReadonlyArray<Record<string, Tensor>>;
  /** Where they came from (for stats): 'mnist:train', a folder... */
  source: string;
  /** Number of examples (sum of batch sizes along axis 0). */
  count: number;
}

/** Calibration data from feeds you already have. */
export function calibrationFromFeeds(feeds: ReadonlyArray<Record<string, Tensor>>, source = 'feeds'): CalibrationData {
  if (!feeds.length) throw new FrugalError('E_USAGE', 'calibration needs at least one batch of inputs');
  const count = feeds.reduce((s, f) => s + (Object.values(f)[0]?.dims[0] ?? 1), 0);
  return { batches: feeds, source, count };
}

/**
 * Calibration data from `source`: a built-in dataset name ('mnist', 'spam': the first `count` examples
 * of the TRAIN split, never the test split, so accuracy measured afterwards stays honest), or a folder
 * of .pb TensorProto inputs (`input_0.pb`..., or `test_data_set_*` subfolders of them, as ONNX's test
 * data is laid out; file k feeds the model's k-th input).
 */
export async function calibrationFeeds(model: Model, source: string, opts: { count?: number; batchSize?: number } = {}): Promise<CalibrationData> {
  const count = opts.count ?? 256;
  const batchSize = opts.batchSize ?? 32;
  if (!(Number.isInteger(count) && count >= 1)) throw new FrugalError('E_USAGE', `calibration count must be a positive integer, got ${count}`);
  if (source === 'mnist' || source === 'spam') {
    const feed = openDatasetFeed(source, model, { limit: count });
    const out: Array<Record<string, Tensor>> = [];
    for (const idx of batches(feed.counts.train, batchSize)) {
      const b = feed.batch('train', idx);
      out.push(Object.fromEntries(Object.entries(b.feeds).map(([k, t]) => [k, fromOrtTensor(t, k)])));
    }
    return calibrationFromFeeds(out, `${source}:train[0:${feed.counts.train}]`);
  }
  if (!existsSync(source) || !statSync(source).isDirectory()) {
    throw new FrugalError('E_USAGE', `calibration source '${source}' is neither a dataset (mnist, spam) nor a folder of .pb inputs`);
  }
  const names = requiredInputs(model.graph).map((v) => v.name);
  const sets = readdirSync(source).filter((d) => d.startsWith('test_data_set') && statSync(path.join(source, d)).isDirectory()).sort();
  const dirs = sets.length ? sets.map((d) => path.join(source, d)) : [source];
  const out = dirs.slice(0, count).map((dir) => {
    const files = readdirSync(dir).filter((f) => /^input_\d+\.pb$/.test(f)).sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
    if (files.length !== names.length) throw new FrugalError('E_USAGE', `calibration folder '${dir}' has ${files.length} input_N.pb files; the model takes ${names.length} inputs (${names.join(', ')})`);
    return feedsFromFiles(files.map((f, i) => ({ name: names[i]!, path: path.join(dir, f) })));
  });
  return calibrationFromFeeds(out, source);
}

export interface CalibrateOptions {
  method?: CalibrationMethod;
  /**
   * Element types by value name, when the caller has already inferred them (the static pass has): saves
   * a second copy of the model and a second inference for untyped taps.
   */
  elemTypes?: ReadonlyMap<string, number>;
  /** Percentile of |x| kept by the 'percentile' method (default 99.999). */
  percentile?: number;
  /** Histogram bins for 'percentile' and 'entropy' (default 2048). */
  bins?: number;
  /**
   * Quantized levels the 'entropy' method compares against. Default: the levels the quantizer will
   * really have over [0, t]: 255 for a non-negative tensor with uint8 activations, else 128.
   */
  quantizedBins?: number;
  /** The activation type the ranges are for (default 'uint8'); sets the entropy default above. */
  activations?: 'uint8' | 'int8';
  intraOpThreads?: number;
}

export interface TensorRange {
  min: number;
  max: number;
}

/** Measures the range of each named float tensor of `model` over the calibration data. */
export async function calibrate(model: Model, tensorNames: readonly string[], data: CalibrationData, opts: CalibrateOptions = {}): Promise<Map<string, TensorRange>> {
  const method = opts.method ?? 'minmax';
  if (!['minmax', 'percentile', 'entropy'].includes(method)) throw new FrugalError('E_USAGE', `calibration method must be minmax, percentile or entropy, got '${method}'`);
  const percentile = opts.percentile ?? 99.999;
  if (!(percentile > 0 && percentile <= 100)) throw new FrugalError('E_USAGE', `percentile must be in (0, 100], got ${percentile}`);
  const bins = opts.bins ?? 2048;
  const qbinsFor = (min: number): number => opts.quantizedBins ?? (min >= 0 && opts.activations !== 'int8' ? 255 : 128);
  const qcheck = opts.quantizedBins ?? 255;
  if (!(Number.isInteger(bins) && Number.isInteger(qcheck) && qcheck >= 2 && bins >= qcheck)) throw new FrugalError('E_USAGE', `need integer bins ≥ quantizedBins ≥ 2, got ${bins} and ${qcheck}`);
  // A private copy with the tensors as outputs; the caller's model is untouched.
  const probe = decodeModel(encodeModelToBytes(model));
  const g = probe.graph;
  const names = [...new Set(tensorNames)];
  // Element types of untyped taps: the caller's, or inferred on another copy. Only the element type is
  // taken (an inferred shape merged into the probe could contradict a shape the exporter declared).
  let inferredType = (name: string): number | undefined => opts.elemTypes?.get(name);
  if (!opts.elemTypes && names.some((n) => !g.lookup(n)?.type)) {
    const typed = decodeModel(encodeModelToBytes(model));
    try {
      inferShapes(typed);
    } catch {
      // Best effort: a tap that stays untyped is declared without a type, and ORT infers it.
    }
    inferredType = (name) => elemTypeOf(typed.graph.lookup(name)?.type);
  }
  for (const n of names) {
    const v = g.lookup(n);
    if (!v) throw new FrugalError('E_USAGE', `calibration: the model has no tensor named '${n}'`);
    const inferred = v.type ? undefined : inferredType(n);
    if (inferred !== undefined) v.type = tensorType(inferred);
    const t = elemTypeOf(v.type);
    if (t !== undefined && t !== DataType.FLOAT) throw new FrugalError('E_USAGE', `calibration: tensor '${n}' is ${dataTypeName(t)}, not float32; only float tensors have a quantization range`);
    // Declared with its real (inferred) type, or untyped: never a guessed float, which would make
    // ORT reject the model when the tensor is really an integer.
    if (!g.outputs.includes(v)) g.outputs.push(v);
  }
  const session = await createSession(probe, { name: 'calibration', ...(opts.intraOpThreads ? { intraOpThreads: opts.intraOpThreads } : {}) });
  const lo = new Map<string, number>(names.map((n) => [n, Infinity]));
  const hi = new Map<string, number>(names.map((n) => [n, -Infinity]));
  const hists = new Map<string, Float64Array>();
  try {
    const pass = async (visit: (name: string, x: Float32Array) => void): Promise<void> => {
      for (const [k, feeds] of data.batches.entries()) {
        let out: Record<string, Tensor>;
        try {
          out = await session.run(feeds, { outputs: names });
        } catch (e) {
          // The float model itself fails on these inputs: no range can be measured (say so, not a crash).
          throw new FrugalError('E_DATA', `calibration: the float model fails in ONNX Runtime on calibration batch ${k} from ${data.source}; calibrate with inputs the model accepts (${(e as Error).message})`, { cause: e });
        }
        for (const n of names) {
          const t = out[n];
          if (!t || t.dtype !== DataType.FLOAT) throw new FrugalError('E_DATA', `calibration: tensor '${n}' is not float32`);
          visit(n, t.toArray() as Float32Array);
        }
      }
    };
    await pass((n, x) => {
      let a = lo.get(n)!;
      let b = hi.get(n)!;
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        if (v < a) a = v;
        if (v > b) b = v;
      }
      lo.set(n, a);
      hi.set(n, b);
    });
    if (method !== 'minmax') {
      for (const n of names) hists.set(n, new Float64Array(bins));
      await pass((n, x) => {
        const amax = Math.max(Math.abs(lo.get(n)!), Math.abs(hi.get(n)!));
        if (!(amax > 0)) return;
        const h = hists.get(n)!;
        const k = bins / amax;
        for (let i = 0; i < x.length; i++) h[Math.min(bins - 1, Math.floor(Math.abs(x[i]!) * k))]!++;
      });
    }
  } finally {
    await session.release();
  }
  const result = new Map<string, TensorRange>();
  for (const n of names) {
    const min = lo.get(n)!;
    const max = hi.get(n)!;
    if (!Number.isFinite(min) || !Number.isFinite(max)) throw new FrugalError('E_DATA', `calibration: tensor '${n}' had no finite values (empty, NaN or infinite) over ${data.count} examples`);
    if (method === 'minmax') {
      result.set(n, { min, max });
      continue;
    }
    const amax = Math.max(Math.abs(min), Math.abs(max));
    const h = hists.get(n)!;
    const t = amax === 0 ? 0 : method === 'percentile' ? percentileThreshold(h, amax, percentile) : entropyThreshold(h, amax, qbinsFor(min));
    result.set(n, { min: Math.max(min, -t), max: Math.min(max, t) });
  }
  return result;
}

/** Upper edge of the first bin where the cumulative share of |x| reaches `percentile`%. */
export function percentileThreshold(hist: Float64Array, amax: number, percentile: number): number {
  let total = 0;
  for (const c of hist) total += c;
  const target = (total * percentile) / 100;
  let acc = 0;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i]!;
    if (acc >= target) return Math.min(amax, ((i + 1) * amax) / hist.length);
  }
  return amax;
}

/**
 * TensorRT's KL-divergence threshold over a histogram of |x| on [0, amax]. For each candidate
 * i ∈ [qbins, bins]: P = the first i bins with everything beyond folded into bin i−1; Q = those i bins
 * merged into `qbins` groups, each group's mass spread evenly over its non-empty bins; pick the i with
 * the smallest KL(P‖Q) and return the middle of bin i (TensorRT's convention).
 */
export function entropyThreshold(hist: Float64Array, amax: number, qbins: number): number {
  const bins = hist.length;
  const width = amax / bins;
  let tail = 0;
  for (let i = qbins; i < bins; i++) tail += hist[i]!;
  let best = bins;
  let bestKl = Infinity;
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  for (let i = qbins; i <= bins; i++) {
    // tail = mass of bins [i, bins) at this point.
    p.set(hist.subarray(0, i));
    p[i - 1]! += tail;
    q.fill(0, 0, i);
    for (let j = 0; j < qbins; j++) {
      const start = Math.floor((j * i) / qbins);
      const end = j === qbins - 1 ? i : Math.floor(((j + 1) * i) / qbins);
      let mass = 0;
      let nonzero = 0;
      for (let k = start; k < end; k++) {
        mass += hist[k]!;
        if (hist[k]! > 0) nonzero++;
      }
      if (nonzero) for (let k = start; k < end; k++) if (hist[k]! > 0) q[k] = mass / nonzero;
    }
    let ps = 0;
    let qs = 0;
    for (let k = 0; k < i; k++) (ps += p[k]!), (qs += q[k]!);
    let kl = 0;
    if (ps > 0 && qs > 0) {
      for (let k = 0; k < i; k++) {
        const pk = p[k]! / ps;
        if (pk <= 0) continue;
        // Q is empty where P only holds folded outliers: a small floor keeps KL finite and large.
        const qk = Math.max(q[k]! / qs, 1e-12);
        kl += pk * Math.log(pk / qk);
      }
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
    if (i < bins) tail -= hist[i]!;
  }
  return Math.min(amax, (best + 0.5) * width);
}
