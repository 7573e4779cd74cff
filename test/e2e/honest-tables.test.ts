/**
 * Figures that do not overclaim (issue 11, items 2 and 8): `compare` calls a latency difference a
 * speed-up only when its interval excludes 1 and shows top-1 agreement only for class scores; the
 * profile rating does not split identical models by noise; tables round to three significant figures
 * and name their bases.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { compareModels, latencyComparison } from '../../src/evaluation/compare.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { saveModel } from '../../src/onnx/index.js';
import { EstimateMeter, medianInterval, rateEnergies } from '../../src/profiling/index.js';
import { formatNumber } from '../../src/report/format.js';
import { runFrugal } from '../helpers/cli.js';

let dir: string;
let image: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-tables-'));
  // An image-to-image model: [1,3,8,8] in, [1,3,8,8] out (a 3×3 convolution).
  const b = new GraphBuilder('img');
  const x = b.input('image', DataType.FLOAT, [1, 3, 8, 8]);
  const w = b.constant('w', DataType.FLOAT, [3, 3, 3, 3], Float32Array.from({ length: 81 }, (_, i) => Math.cos(i) * 0.2));
  b.output(b.op('Conv', [x, w], { pads: [1, 1, 1, 1] }), 'styled', DataType.FLOAT, [1, 3, 8, 8]);
  image = path.join(dir, 'image.onnx');
  await saveModel(b.build({ opsetImports: { '': 13 } }), image);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('medianInterval: the order statistics around the median (distribution-free)', () => {
  const v = Array.from({ length: 20 }, (_, i) => i + 1); // 1..20
  const ci = medianInterval(v);
  assert.equal(ci.median, 10.5);
  // ranks n/2 ∓ 0.98·√n = 10 ∓ 4.38 → 5th and 15th values.
  assert.deepEqual([ci.low, ci.high], [5, 15]);
  assert.deepEqual(medianInterval([3]), { median: 3, low: 3, high: 3 });
});

test('latencyComparison: noise on one model is "within noise"; a consistent gap is faster/slower', () => {
  // Same model twice: paired ratios scatter around 1 both ways.
  const ref = [1.0, 1.2, 0.9, 1.1, 1.0, 1.3, 0.95, 1.05, 1.0, 1.15, 0.9, 1.0];
  const same = [1.1, 1.0, 1.0, 1.0, 1.2, 1.1, 0.9, 1.0, 0.95, 1.2, 1.0, 0.92];
  const n = latencyComparison(ref, same);
  assert.equal(n.verdict, 'within noise');
  assert.ok(n.ratioLow <= 1 && n.ratioHigh >= 1, `${n.ratioLow}..${n.ratioHigh}`);
  const fast = latencyComparison(ref, ref.map((x, i) => x * (0.6 + 0.02 * (i % 3))));
  assert.equal(fast.verdict, 'faster');
  assert.ok(fast.ratioHigh < 1);
  assert.equal(latencyComparison(ref, ref.map((x) => x * 1.5)).verdict, 'slower');
});

test('compare on an image-to-image model: no top-1 agreement (not class scores), in the library and the CLI', async () => {
  const r = await compareModels(image, image, { latencyRuns: 0 });
  assert.equal(r.outputs[0]!.top1Agreement, null);
  assert.equal(r.top1Agreement, null);
  const cli = runFrugal(dir, ['compare', image, image, '--runs', '6']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.doesNotMatch(cli.stdout, /top-1/);
  assert.match(cli.stdout, /^latency: .* ms → .* ms: (within noise|[\d.]+×, (faster|slower)) \(ratio [\d.]+×, 95% interval [\d.]+–[\d.]+×; medians of 6 alternating runs\)$/m);
});

test('rating: identical models within noise share a band; clear gaps still rate 5..1', () => {
  assert.deepEqual(rateEnergies([2.0, 2.15]), [5, 5], 'two copies of one model, 7.5% apart by noise');
  assert.deepEqual(rateEnergies([2.15, 2.0]), [5, 5]);
  assert.deepEqual(rateEnergies([1, 1.05, 10]), [5, 5, 1]);
  assert.deepEqual(rateEnergies([1, 9.5, 10]), [5, 1, 1], 'within 10% of the worst counts as the worst');
  assert.deepEqual(rateEnergies([1, 10, 100, 1000, 10000, 100000]), [5, 4, 3, 2, 1, 1]);
});

test('tables: three significant figures; the estimate names its basis in watts per busy CPU', () => {
  assert.equal(formatNumber(0.0022099), '0.00221');
  assert.equal(formatNumber(0.50737), '0.507');
  assert.equal(formatNumber(3.6331), '3.63');
  assert.equal(formatNumber(12345), '12300');
  const m = new EstimateMeter({ wattsPerCpu: 2.1875, cpuModel: 'test cpu' });
  const detail = m.status().detail!;
  assert.match(detail, /^2\.19 W per busy logical CPU, i\.e\. J per CPU-second/);
  assert.doesNotMatch(detail, /W per CPU-second/);
});

test('profile of two copies of one model: per-1k-inference carbon column, rounded figures, and no rating split by noise', () => {
  const r = runFrugal(dir, ['profile', image, image, '--iterations', '30', '--warmup', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /gCO2e\/1k inferences/);
  const table = r.stdout.split('\n\n')[1]!;
  // Every decimal figure (byte sizes aside) has at most three significant digits.
  for (const tok of table.replace(/[\d.]+ [KMG]?i?B\b/g, '').match(/\d+\.\d+/g) ?? []) {
    assert.ok(tok.replace('.', '').replace(/^0+/, '').length <= 3, `'${tok}' has more than three significant digits`);
  }
  assert.match(r.stdout, /^rating: /m);
  // The ratings of two copies differ only when their energies differ by more than the noise the run
  // itself measured (the record's tolerance); otherwise both are 5/5 and the report says so.
  const j = JSON.parse(runFrugal(dir, ['profile', image, image, '--iterations', '30', '--warmup', '3', '--json']).stdout) as {
    ratingTolerance: number;
    models: Array<{ rating: number; energy: { whPer1000Inferences: number } }>;
  };
  assert.ok(j.ratingTolerance >= 0.1);
  const [a, b] = j.models.map((m) => m.energy.whPer1000Inferences) as [number, number];
  if (j.models[0]!.rating !== j.models[1]!.rating) assert.ok(Math.max(a, b) > Math.min(a, b) * (1 + j.ratingTolerance));
  else assert.deepEqual(j.models.map((m) => m.rating), [5, 5]);
});
