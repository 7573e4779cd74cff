/**
 * Seeded, bounded fuzzing of the whole read path a command takes: decode → inspect (shape inference and
 * the cost model) → encode → decode, on mutated real models. Each step either succeeds or throws a
 * FrugalError; after inspect, every inferred dimension is a non-negative integer, a symbol or unknown
 * (never NaN or a fraction), so encoding what was decoded always works.
 *
 * Seeds: a fixed list (the same every run) plus two fresh seeds per run, printed with any failure;
 * FRUGAL_FUZZ_SEEDS=1,2,3 replays given seeds only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { inferShapes } from '../../src/ir/shape-inference.js';
import type { Model } from '../../src/ir/model.js';
import { inspectModel } from '../../src/ir/summary.js';
import { decodeModel } from '../../src/onnx/decode.js';
import { encodeModelToBytes } from '../../src/onnx/encode.js';
import { Rng } from '../../src/util/rng.js';
import { collectLengths, type LenField, modelFiles, mutate } from '../helpers/fuzz.js';

const DATA = path.resolve(process.cwd(), '../shared/data');
const CONFORMANCE = [
  'onnx-backend/node/test_if/model.onnx',
  'onnx-backend/node/test_loop11/model.onnx',
  'onnx-backend/node/test_scan_sum/model.onnx',
  'onnx-backend/node/test_scan9_sum/model.onnx',
  'onnx-backend/node/test_reshape_negative_dim/model.onnx',
  'onnx-backend/node/test_range_float_type_positive_delta_expanded/model.onnx',
  'onnx-backend/node/test_resize_upsample_scales_linear/model.onnx',
  'onnx-backend/node/test_slice_neg_steps/model.onnx',
];
/** Models over this size take too long to inspect hundreds of times within the budget. */
const MAX_BYTES = 400_000;
const FIXED_SEEDS = [11, 23, 42, 77];
const MUTATIONS_PER_SEED = 40;
const TIME_BUDGET_MS = 30_000;

const describe = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** Every dim of every value type (graphs, bodies, value_info), with where it is. */
function badDims(model: Model): string[] {
  const bad: string[] = [];
  for (const g of model.allGraphs()) {
    for (const v of g.values.values()) {
      const t = v.type;
      if (!t || t.kind !== 'tensor' || !t.shape) continue;
      t.shape.forEach((d, i) => {
        if (typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0)) bad.push(`graph '${g.name}' value '${v.name}' dim ${i} = ${d}`);
      });
    }
  }
  return bad;
}

function seeds(): number[] {
  const given = process.env.FRUGAL_FUZZ_SEEDS;
  if (given) return given.split(',').map(Number);
  const fresh = [0, 1].map(() => Math.floor(Math.random() * 2 ** 31));
  return [...FIXED_SEEDS, ...fresh];
}

test('fuzz: mutated models go through decode → inspect → encode → decode, or fail with a FrugalError', (t) => {
  if (!fs.existsSync(DATA)) {
    t.skip(`../shared/data not found: ${DATA}`);
    return;
  }
  const files = modelFiles(DATA, CONFORMANCE).filter((f) => fs.statSync(f).size <= MAX_BYTES);
  if (files.length === 0) {
    t.skip(`no models under ${DATA}`);
    return;
  }
  const runSeeds = seeds();
  const started = performance.now();
  const counts = { total: 0, decoded: 0, inspected: 0, encoded: 0, rejected: 0 };
  const failures: string[] = [];
  const sources = files.map((file) => {
    const b = fs.readFileSync(file);
    const src = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const lens: LenField[] = [];
    collectLengths(src, 0, src.length, 0, lens);
    return { file, src, lens };
  });
  outer: for (const seed of runSeeds) {
    for (const [fileIndex, { file, src, lens }] of sources.entries()) {
      // One stream per (seed, model), so a failure replays with its seed alone.
      const rng = new Rng(seed * 1009 + fileIndex);
      for (let m = 0; m < MUTATIONS_PER_SEED; m++) {
        if (performance.now() - started > TIME_BUDGET_MS) break outer;
        const [bytes, what] = mutate(rng, src, lens);
        const where = `${path.relative(DATA, file)}, seed ${seed} (FRUGAL_FUZZ_SEEDS=${seed}), mutation #${m}: ${what}`;
        counts.total++;
        let step = 'decode';
        try {
          // Decoding next to the original keeps external-data references resolvable.
          const model = decodeModel(bytes, { baseDir: path.dirname(file) });
          counts.decoded++;
          step = 'inspect';
          inspectModel(model);
          counts.inspected++;
          const bad = badDims(model);
          if (bad.length) failures.push(`${where}: inspect inferred non-integer dims: ${bad.slice(0, 3).join('; ')}`);
          step = 'encode';
          const again = encodeModelToBytes(model);
          step = 're-decode';
          decodeModel(again, { baseDir: path.dirname(file) });
          counts.encoded++;
        } catch (e) {
          // Decode and inspect may refuse a corrupt model (typed). Encoding what decoded must not fail.
          if (!isFrugalError(e) || step === 'encode' || step === 're-decode') failures.push(`${where}: ${step} threw ${describe(e)}`);
          else counts.rejected++;
        }
        if (failures.length >= 5) break outer;
      }
    }
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `round-trip fuzz: seeds ${runSeeds.join(',')}; ${counts.total} mutations of ${files.length} models: ${counts.decoded} decoded, ${counts.inspected} inspected, ${counts.encoded} re-encoded, ${counts.rejected} rejected (FrugalError); ${secs} s`,
  );
  assert.deepEqual(failures, [], `seeds this run: ${runSeeds.join(',')}`);
  assert.ok(counts.encoded > 0, 'some mutations survive the whole round trip');
});

test('shape inference never writes a non-integer dim: a Slice with mismatched starts/ends stays unknown, naming the node', () => {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, [4, 6]);
  // Opset 9 Slice: `ends` one entry short (what a flipped bit in a length field does to scan_1.onnx).
  const y = b.op('Slice', [x], { starts: [0, 1], ends: [2] }, { name: 'cut' });
  b.output(b.op('Relu', [y]), 'z', DataType.FLOAT);
  const m = b.build({ opsetImports: { '': 9 } });
  const report = inferShapes(m);
  assert.deepEqual(badDims(m), []);
  assert.ok(report.warnings.some((w) => /cut/.test(w) && /same length/.test(w)), report.warnings.join('\n'));
  assert.throws(() => inferShapes(m, { strict: true }), { code: 'E_SHAPE', message: /cut.*starts, ends, axes and steps must have the same length/ });
  decodeModel(encodeModelToBytes(m));
});

/** Mutations that once failed (one mutation from `new Rng(seed)` each), found by long fuzz runs. */
const REGRESSIONS: Array<{ file: string; seed: number; was: string }> = [
  { file: 'models/scan-control-flow/scan_1.onnx', seed: 9550, was: 'inspect stored NaN dims (Slice with a short ends list); encode failed' },
  { file: 'models/scan-control-flow/scan_1.onnx', seed: 10470, was: 'inspect stored NaN dims; encode failed' },
  { file: 'models/already-quantized/conv.int4_weights.qdq.onnx', seed: 114797, was: 'decode threw RangeError allocating 23 GB for int4 int32_data' },
];

test('known regressions: mutations that once broke decode, inspect or encode', (t) => {
  for (const r of REGRESSIONS) {
    const file = path.join(DATA, r.file);
    if (!fs.existsSync(file)) {
      t.diagnostic(`skipped ${r.file}: not found`);
      continue;
    }
    const b = fs.readFileSync(file);
    const src = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const lens: LenField[] = [];
    collectLengths(src, 0, src.length, 0, lens);
    const [bytes, what] = mutate(new Rng(r.seed), src, lens);
    const where = `${r.file} seed ${r.seed} (${what}; was: ${r.was})`;
    let model: Model;
    try {
      model = decodeModel(bytes, { baseDir: path.dirname(file) });
    } catch (e) {
      assert.ok(isFrugalError(e), `${where}: decode threw ${describe(e)}`);
      continue;
    }
    inspectModel(model);
    assert.deepEqual(badDims(model), [], where);
    decodeModel(encodeModelToBytes(model));
  }
});
