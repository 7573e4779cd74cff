/**
 * Compares a candidate model (quantized, pruned, converted...) with its reference: file size, output
 * fidelity on real inputs, accuracy where the inputs carry labels, and latency measured side by side.
 *
 * Fidelity is measured per output over every sample, on the flattened values:
 * - `maxRelativeError` = max|c − r| / max|r| (the worst element, scaled by the reference's range);
 * - `meanRelativeError` = mean|c − r| / mean|r|;
 * - `cosineSimilarity` = c·r / (|c| |r|) (1 when both are zero);
 * - `top1Agreement` = fraction of rows whose arg-max over the last axis agrees, for class scores only:
 *   rank-2 outputs [batch, classes] with more than one class (an image's or a sequence's last axis is
 *   no class axis, and agreement there would read as a classifier's 100%).
 * Latency: both sessions warm up, then runs alternate reference/candidate on the same feeds so that
 * machine noise hits both alike; the ratio is candidate median / reference median, and the per-pair
 * ratios give a ~95% interval: a ratio whose interval contains 1 is reported as within noise.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';
import { batches } from '../data/index.js';
import { DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { loadModel, readTensorFile } from '../onnx/index.js';
import { float16BitsToFloat32Array } from '../onnx/packing.js';
import { median, medianInterval } from '../profiling/stats.js';
import { openDatasetFeed } from '../data/feed.js';
import { feedSpecsOf, randomFeeds } from '../runtime/feeds.js';
import { createSession, type FrugalSession } from '../runtime/session.js';
import { toOrtTensor } from '../runtime/tensors.js';
import { argmax } from '../util/argmax.js';

export interface CompareOptions {
  /** Real inputs with labels from a built-in dataset ('mnist', 'spam'): enables accuracy. */
  dataset?: string;
  /** A folder of `.pb` input tensors (see `readInputSets`). */
  inputs?: string;
  /** Dataset examples to score (default 1000). */
  limit?: number;
  /** Dataset batch size (default 100). */
  batchSize?: number;
  /** Without dataset or inputs: this many seeded random samples (default 4). */
  randomSamples?: number;
  /** Sizes for symbolic input dims of random samples (`{ batch: 1, seq: 128 }`). */
  dims?: Record<string, number>;
  seed?: number;
  /** Timed runs per model (default 20); 0 skips the latency measurement. */
  latencyRuns?: number;
  /** Untimed runs per model before timing (default 3). */
  warmupRuns?: number;
  intraOpThreads?: number;
  /** Progress lines (what is being run). */
  onProgress?: (line: string) => void;
}

export interface OutputFidelity {
  name: string;
  /** Elements compared over all samples. */
  elements: number;
  maxRelativeError: number;
  meanRelativeError: number;
  cosineSimilarity: number;
  /** Null when the output has no class axis (rank < 2 or last axis of 1). */
  top1Agreement: number | null;
}

export interface CompareResult {
  reference: { path: string; bytes: number };
  candidate: { path: string; bytes: number };
  /** Candidate bytes / reference bytes (model file plus external data). */
  sizeRatio: number;
  /** Where the inputs came from: `dataset:mnist`, `files:<folder>` or `random`. */
  inputSource: string;
  samples: number;
  /** Per output, in the reference's output order. */
  outputs: OutputFidelity[];
  /** Worst over outputs (max error, min cosine, min agreement). */
  maxRelativeError: number;
  meanRelativeError: number;
  cosineSimilarity: number;
  top1Agreement: number | null;
  /** Only with a labelled dataset; accuracy uses the first output as logits; `dropPoints` = 100·(reference − candidate). */
  accuracy: { reference: number; candidate: number; dropPoints: number; count: number } | null;
  /** Median milliseconds per run of one sample, candidate / reference, and how sure that ratio is. */
  latency: LatencyComparison | null;
}

export interface LatencyComparison {
  referenceMs: number;
  candidateMs: number;
  /** candidateMs / referenceMs. */
  ratio: number;
  /** ~95% interval of the median of per-pair ratios (candidate run / the reference run beside it). */
  ratioLow: number;
  ratioHigh: number;
  /** 'faster' or 'slower' only when the interval excludes 1. */
  verdict: 'faster' | 'slower' | 'within noise';
  runs: number;
}

/** Bytes a model occupies on disk: its file plus the external-data files it references. */
export async function modelDiskBytes(file: string, model?: Model): Promise<number> {
  const m = model ?? (await loadModel(file));
  const files = new Set<string>();
  for (const g of m.allGraphs()) for (const v of g.initializers()) if (v.initializer!.external?.path) files.add(v.initializer!.external.path);
  let bytes = statSync(file).size;
  for (const f of files) bytes += statSync(f).size;
  return bytes;
}

/**
 * Reads input samples from a folder of `.pb` TensorProto files. Layouts, checked in order:
 * sub-folders (such as ONNX's `test_data_set_N/`) each holding one sample's `input_K.pb` files; or the
 * folder itself as one sample. In a sample, a file whose tensor (or file) name is an input's name feeds
 * that input; the rest feed the remaining inputs in order (`input_0.pb`, `input_1.pb`, ...).
 */
export function readInputSets(folder: string, model: Model): Array<Record<string, ort.Tensor>> {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new FrugalError('E_IO', `input folder '${folder}' does not exist or is not a folder`);
  const pbFiles = (dir: string) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.pb') && !/^output_/.test(f))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .map((f) => path.join(dir, f));
  const subdirs = readdirSync(folder)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((d) => path.join(folder, d))
    .filter((d) => statSync(d).isDirectory() && pbFiles(d).length > 0);
  const sets = subdirs.length ? subdirs.map(pbFiles) : [pbFiles(folder)];
  const names = feedSpecsOf(model).map((s) => s.name);
  return sets.map((files, k) => {
    if (files.length === 0) throw new FrugalError('E_USAGE', `input folder '${folder}' holds no .pb files`);
    const feeds: Record<string, ort.Tensor> = {};
    const rest: ort.Tensor[] = [];
    for (const f of files) {
      const t = readTensorFile(f);
      const byName = [t.name, path.basename(f, '.pb')].find((n) => names.includes(n) && !(n in feeds));
      if (byName) feeds[byName] = toOrtTensor(t);
      else rest.push(toOrtTensor(t));
    }
    for (const n of names) if (!(n in feeds) && rest.length) feeds[n] = rest.shift()!;
    const missing = names.filter((n) => !(n in feeds));
    if (missing.length || rest.length) {
      const where = subdirs.length ? subdirs[k]! : folder;
      throw new FrugalError('E_USAGE', `'${where}' has ${files.length} .pb file(s) but the model takes ${names.length} input(s) (${names.map((n) => `'${n}'`).join(', ')})`);
    }
    return feeds;
  });
}

/** Float view of an output tensor, or undefined when it is not numeric. */
function floatsOf(t: ort.Tensor): Float64Array | Float32Array | undefined {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (t.type === 'float16') return float16BitsToFloat32Array(new Uint16Array((d as Uint16Array).buffer, (d as Uint16Array).byteOffset, t.size));
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float64Array.from(d, Number);
  if (ArrayBuffer.isView(d)) return Float64Array.from(d as unknown as ArrayLike<number>);
  return undefined;
}

/** Running sums for one output's fidelity. */
class Accumulator {
  elements = 0;
  maxDiff = 0;
  maxRef = 0;
  sumDiff = 0;
  sumRef = 0;
  dot = 0;
  normR = 0;
  normC = 0;
  rows = 0;
  agree = 0;
  hasClasses = true;

  add(r: ArrayLike<number>, c: ArrayLike<number>, dims: readonly number[]): void {
    for (let i = 0; i < r.length; i++) {
      const a = r[i]!;
      const b = c[i]!;
      const d = Math.abs(a - b);
      if (d > this.maxDiff || Number.isNaN(d)) this.maxDiff = Number.isNaN(d) ? Infinity : d;
      this.maxRef = Math.max(this.maxRef, Math.abs(a));
      this.sumDiff += Number.isNaN(d) ? Infinity : d;
      this.sumRef += Math.abs(a);
      this.dot += a * b;
      this.normR += a * a;
      this.normC += b * b;
    }
    this.elements += r.length;
    const k = dims.length === 2 ? dims[1]! : 0;
    if (k <= 1) {
      this.hasClasses = false;
      return;
    }
    for (let o = 0; o + k <= r.length; o += k) {
      this.rows++;
      if (argmax(r, o, k) === argmax(c, o, k)) this.agree++;
    }
  }

  result(name: string): OutputFidelity {
    const cos = this.normR === 0 && this.normC === 0 ? 1 : this.dot / (Math.sqrt(this.normR) * Math.sqrt(this.normC) || 1);
    return {
      name,
      elements: this.elements,
      maxRelativeError: this.maxRef === 0 ? this.maxDiff : this.maxDiff / this.maxRef,
      meanRelativeError: this.sumRef === 0 ? this.sumDiff / Math.max(1, this.elements) : this.sumDiff / this.sumRef,
      cosineSimilarity: Number.isFinite(cos) ? cos : 0,
      top1Agreement: this.hasClasses && this.rows ? this.agree / this.rows : null,
    };
  }
}

interface Sample {
  feeds: Record<string, ort.Tensor>;
  labels?: Uint8Array;
}

/** Samples from a dataset (labelled), a .pb folder, or seeded random data, plus one for timing. */
function samplesFor(model: Model, opts: CompareOptions): { source: string; samples: Sample[]; timing: Record<string, ort.Tensor> } {
  if (opts.dataset && opts.inputs) throw new FrugalError('E_USAGE', 'give --dataset or --inputs, not both');
  if (opts.dataset) {
    const feed = openDatasetFeed(opts.dataset, model, { testLimit: opts.limit ?? 1000, evalOnly: true });
    const samples = [...batches(feed.counts.test, opts.batchSize ?? 100)].map((idx) => {
      const b = feed.batch('test', idx);
      return { feeds: b.feeds, labels: b.labels };
    });
    return { source: `dataset:${feed.name}`, samples, timing: feed.batch('test', [0]).feeds };
  }
  if (opts.inputs) {
    const samples = readInputSets(opts.inputs, model).map((feeds) => ({ feeds }));
    return { source: `files:${opts.inputs}`, samples, timing: samples[0]!.feeds };
  }
  const specs = feedSpecsOf(model);
  const samples = Array.from({ length: opts.randomSamples ?? 4 }, (_, i) => {
    const f = randomFeeds(specs, { seed: (opts.seed ?? 1) + i, ...(opts.dims ? { dims: opts.dims } : {}) });
    return { feeds: Object.fromEntries(Object.entries(f).map(([k, t]) => [k, toOrtTensor(t)])) };
  });
  return { source: 'random', samples, timing: samples[0]!.feeds };
}

function argmaxRows(data: ArrayLike<number>, classes: number, labels: Uint8Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (argmax(data, i * classes, classes) === labels[i]) correct++;
  return correct;
}

/** Alternating timed runs of two sessions on the same feeds; medians in milliseconds. */
export async function sideBySideLatency(
  ref: FrugalSession,
  cand: FrugalSession,
  feeds: Record<string, ort.Tensor>,
  runs: number,
  warmup = 3,
): Promise<LatencyComparison> {
  const [r, c] = await interleavedTimings([{ session: ref, feeds }, { session: cand, feeds }], runs, warmup);
  return latencyComparison(r!, c!);
}

/**
 * Per-run times (ms) of each session on its own feeds, after `warmup` runs each: the sessions run in
 * turn within each round, and every other round in reverse order, so that machine noise hits all alike
 * and none always follows another's cache effects.
 */
export async function interleavedTimings(entries: ReadonlyArray<{ session: FrugalSession; feeds: Record<string, ort.Tensor> }>, runs: number, warmup = 3): Promise<number[][]> {
  for (let i = 0; i < warmup; i++) for (const e of entries) await e.session.runOrt(e.feeds);
  const times = entries.map(() => [] as number[]);
  const order = entries.map((_, k) => k);
  for (let i = 0; i < runs; i++) {
    for (const k of i % 2 ? [...order].reverse() : order) {
      const t0 = performance.now();
      await entries[k]!.session.runOrt(entries[k]!.feeds);
      times[k]!.push(performance.now() - t0);
    }
  }
  return times;
}

/** The comparison of paired timings (`candidate[i]` ran beside `reference[i]`), in milliseconds. */
export function latencyComparison(reference: readonly number[], candidate: readonly number[]): LatencyComparison {
  if (reference.length !== candidate.length || reference.length === 0) throw new FrugalError('E_USAGE', 'latency comparison needs the same non-zero number of runs of each model');
  const referenceMs = median(reference);
  const candidateMs = median(candidate);
  const ci = medianInterval(candidate.map((x, i) => x / reference[i]!));
  const verdict = ci.high < 1 ? 'faster' : ci.low > 1 ? 'slower' : 'within noise';
  return { referenceMs, candidateMs, ratio: candidateMs / referenceMs, ratioLow: ci.low, ratioHigh: ci.high, verdict, runs: reference.length };
}

/**
 * Compares `candidate` with `reference` (paths to .onnx files that take the same inputs and give the
 * same outputs). See the module comment for the definitions of each figure.
 */
export async function compareModels(reference: string, candidate: string, opts: CompareOptions = {}): Promise<CompareResult> {
  const refModel = await loadModel(reference);
  const candModel = await loadModel(candidate);
  const refBytes = await modelDiskBytes(reference, refModel);
  const candBytes = await modelDiskBytes(candidate, candModel);
  const { source, samples, timing } = samplesFor(refModel, opts);
  const threads = opts.intraOpThreads ? { intraOpThreads: opts.intraOpThreads } : {};
  const ref = await createSession(reference, threads);
  let cand: FrugalSession | undefined;
  try {
    cand = await createSession(candidate, threads);
    const missing = ref.inputNames.filter((n) => !cand!.inputNames.includes(n));
    if (missing.length) throw new FrugalError('E_USAGE', `'${candidate}' lacks input ${missing.map((n) => `'${n}'`).join(', ')} of '${reference}'; compare models with the same inputs`);
    // Tensor outputs both give; int4/uint4 outputs cannot be fetched from the binding at all, and
    // non-tensor outputs (ZipMap's sequences of maps) are not numbers to compare.
    const outputs = ref.outputs.filter((o) => o.elemType !== undefined && o.elemType !== DataType.INT4 && o.elemType !== DataType.UINT4 && cand!.outputNames.includes(o.name)).map((o) => o.name);
    if (!outputs.length) throw new FrugalError('E_USAGE', `'${reference}' and '${candidate}' share no output to compare (outputs: ${ref.outputNames.join(', ')} vs ${cand.outputNames.join(', ')})`);
    const acc = new Map(outputs.map((n) => [n, new Accumulator()]));
    let refCorrect = 0;
    let candCorrect = 0;
    let labelled = 0;
    for (const [k, s] of samples.entries()) {
      opts.onProgress?.(`sample ${k + 1}/${samples.length}`);
      const feedsFor = (sess: FrugalSession) => Object.fromEntries(Object.entries(s.feeds).filter(([n]) => sess.inputNames.includes(n)));
      const r = await ref.runOrt(feedsFor(ref), { outputs });
      const c = await cand.runOrt(feedsFor(cand), { outputs });
      for (const n of outputs) {
        const rt = r[n] as ort.Tensor;
        const ct = c[n] as ort.Tensor;
        const rv = floatsOf(rt);
        const cv = floatsOf(ct);
        if (!rv || !cv) continue;
        if (rv.length !== cv.length) throw new FrugalError('E_SHAPE', `output '${n}' has ${rv.length} elements in the reference but ${cv.length} in the candidate`);
        acc.get(n)!.add(rv, cv, rt.dims.map(Number));
      }
      if (s.labels) {
        const rt = r[outputs[0]!] as ort.Tensor;
        const classes = rt.size / s.labels.length;
        refCorrect += argmaxRows(floatsOf(rt)!, classes, s.labels);
        candCorrect += argmaxRows(floatsOf(c[outputs[0]!] as ort.Tensor)!, classes, s.labels);
        labelled += s.labels.length;
      }
    }
    const fidelity = outputs.map((n) => acc.get(n)!.result(n)).filter((f) => f.elements > 0);
    let latency: CompareResult['latency'] = null;
    const runs = opts.latencyRuns ?? 20;
    if (runs > 0) {
      opts.onProgress?.(`timing ${runs} alternating runs of each model`);
      const feeds = (sess: FrugalSession) => Object.fromEntries(Object.entries(timing).filter(([n]) => sess.inputNames.includes(n)));
      // Both sessions take the same feeds (checked above), so the reference's filter fits both.
      latency = await sideBySideLatency(ref, cand, feeds(ref), runs, opts.warmupRuns ?? 3);
    }
    const agreements = fidelity.map((f) => f.top1Agreement).filter((a): a is number => a !== null);
    return {
      reference: { path: reference, bytes: refBytes },
      candidate: { path: candidate, bytes: candBytes },
      sizeRatio: candBytes / refBytes,
      inputSource: source,
      samples: samples.length,
      outputs: fidelity,
      maxRelativeError: Math.max(0, ...fidelity.map((f) => f.maxRelativeError)),
      meanRelativeError: Math.max(0, ...fidelity.map((f) => f.meanRelativeError)),
      cosineSimilarity: Math.min(1, ...fidelity.map((f) => f.cosineSimilarity)),
      top1Agreement: agreements.length ? Math.min(...agreements) : null,
      accuracy: labelled
        ? { reference: refCorrect / labelled, candidate: candCorrect / labelled, dropPoints: (100 * (refCorrect - candCorrect)) / labelled, count: labelled }
        : null,
      latency,
    };
  } finally {
    await ref.release();
    await cand?.release();
  }
}
