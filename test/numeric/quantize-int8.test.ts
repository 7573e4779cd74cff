/**
 * int8 quantization (dynamic and static QDQ), CPU-aware weight range, calibration: each pass proven in
 * ONNX Runtime against the fp32 model, on builder graphs and on the MNIST teacher's real test split.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { float, ints } from '../../src/ir/node.js';
import { Tensor } from '../../src/ir/tensor.js';
import { decodeModel, encodeModelToBytes, loadModel } from '../../src/onnx/index.js';
import { runPass } from '../../src/passes/pass.js';
import {
  calibrate,
  calibrationFeeds,
  calibrationFromFeeds,
  computeScaleZeroPoint,
  int8DynamicPass,
  int8StaticPass,
  quantizeWeight,
  quantRange,
  roundHalfEven,
} from '../../src/passes/quantize/index.js';
import { detectCpuFeatures, recommendInt8Scheme } from '../../src/runtime/cpu-features.js';
import { createSession } from '../../src/runtime/index.js';
import { evaluateModel } from '../../src/evaluation/evaluate.js';
import { createRng } from '../../src/util/rng.js';

const clone = (m: Model): Model => decodeModel(encodeModelToBytes(m));

async function run(m: Model, feeds: Record<string, Tensor>): Promise<Float32Array> {
  const s = await createSession(m, { intraOpThreads: 1 });
  try {
    const out = await s.run(feeds);
    return out[s.outputNames[0]!]!.toArray() as Float32Array;
  } finally {
    await s.release();
  }
}

/** ‖a − b‖ / ‖b‖. */
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) (num += (a[i]! - b[i]!) ** 2), (den += b[i]! ** 2);
  return Math.sqrt(num / den);
}

const randn = (seed: number, n: number, scale = 1) => {
  const r = createRng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * scale);
};

test('cpu features: flags from an injected /proc/cpuinfo decide the weight range', () => {
  const avx2 = detectCpuFeatures({ arch: 'x64', cpuinfo: 'processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu sse2 avx avx2 fma\n' });
  assert.equal(avx2.avx2, true);
  assert.equal(avx2.avx512vnni, false);
  assert.equal(avx2.model, 'Intel Xeon');
  assert.deepEqual(recommendInt8Scheme(avx2).scheme, 's8-reduced');
  const vnni = detectCpuFeatures({ arch: 'x64', cpuinfo: 'flags\t\t: avx2 avx512f avx512_vnni\n' });
  assert.equal(recommendInt8Scheme(vnni).scheme, 's8');
  assert.match(recommendInt8Scheme(vnni).reason, /AVX512-VNNI/);
  assert.equal(recommendInt8Scheme(detectCpuFeatures({ arch: 'x64', cpuinfo: 'flags : avx2 avx_vnni\n' })).scheme, 's8');
  assert.equal(recommendInt8Scheme(detectCpuFeatures({ arch: 'x64', cpuinfo: 'flags : avx2 amx_tile amx_int8\n' })).scheme, 's8');
  const arm = detectCpuFeatures({ arch: 'arm64', cpuinfo: 'Features\t: fp asimd asimddp i8mm\n' });
  assert.equal(arm.dotprod, true);
  assert.equal(arm.i8mm, true);
  assert.equal(recommendInt8Scheme(arm).scheme, 's8');
  assert.equal(recommendInt8Scheme(detectCpuFeatures({ arch: 'riscv64', cpuinfo: '' })).reduceRange, true);
  // This machine: whatever it reports, the flags parse.
  assert.equal(typeof detectCpuFeatures().avx2, 'boolean');
});

test('common: rounding half to even, scale/zero point, per-channel weights', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, -3]);
  // uint8 asymmetric over [-1, 3]: scale 4/255, zero point round(255/4) = 64, 0 exact.
  const a = computeScaleZeroPoint(-1, 3, quantRange('uint8'), false);
  assert.equal(a.zeroPoint, 64);
  assert.equal(a.scale, Math.fround(4 / 255));
  // The range always includes 0 (a positive-only range gets zero point 0).
  assert.equal(computeScaleZeroPoint(2, 5, quantRange('uint8'), false).zeroPoint, 0);
  // int8 symmetric, and 7-bit reduce range.
  assert.deepEqual(computeScaleZeroPoint(-0.5, 2.54, quantRange('int8', { symmetric: true }), true), { scale: Math.fround(5.08 / 254), zeroPoint: 0 });
  assert.deepEqual(quantRange('int8', { symmetric: true, reduceRange: true }), { qmin: -64, qmax: 64 });
  // Channels with very different ranges: per channel is more precise than per tensor.
  const w = new Float32Array(64 * 8);
  const r = createRng(1);
  for (let i = 0; i < w.length; i++) w[i] = r.normal() * 10 ** ((i % 8) - 4);
  const perTensor = quantizeWeight(w, [64, 8], { scheme: 's8' });
  const perChannel = quantizeWeight(w, [64, 8], { scheme: 's8', axis: 1 });
  assert.equal(perChannel.scales.length, 8);
  assert.ok(perChannel.relError < perTensor.relError, `${perChannel.relError} vs ${perTensor.relError}`);
  // Column 0 (values ~1e-4 next to columns ~1e3): per tensor rounds it all to 0, per channel keeps it.
  const col0 = (d: Int8Array | Uint8Array) => Array.from({ length: 64 }, (_, r) => d[r * 8]!);
  assert.ok(col0(perTensor.data).every((q) => q === 0));
  assert.ok(col0(perChannel.data).some((q) => Math.abs(q) > 60));
  const reduced = quantizeWeight(w, [64, 8], { scheme: 's8-reduced', axis: 1 });
  assert.ok((reduced.data as Int8Array).every((q) => q >= -64 && q <= 64));
  const u8 = quantizeWeight(w, [64, 8], { scheme: 'u8', axis: 1 });
  assert.equal(u8.data instanceof Uint8Array, true);
});

test('saturation: 768×3072 u8×s8 MatMul in ORT, full range vs 7-bit weights; the default scheme is accurate here', async (t) => {
  const [M, K, N] = [8, 768, 3072];
  const w = randn(2, K * N, 0.05);
  const x = Tensor.fromArray(DataType.FLOAT, [M, K], randn(3, M * K));
  const build = (scheme?: 's8' | 's8-reduced') => {
    const b = new GraphBuilder('mm');
    const xin = b.input('x', DataType.FLOAT, [M, K]);
    b.output(b.op('MatMul', [xin, b.constant('w', DataType.FLOAT, [K, N], w)], {}, { name: 'mm' }), 'y', DataType.FLOAT, [M, N]);
    const m = b.build();
    return scheme === undefined ? m : m;
  };
  const ref = await run(build(), { x });
  const errs: Record<string, number> = {};
  for (const scheme of ['s8', 's8-reduced', undefined] as const) {
    const r = await runPass(int8DynamicPass(scheme ? { weightScheme: scheme } : {}), build());
    errs[scheme ?? 'default'] = relErr(await run(r.model, { x }), ref);
  }
  const rec = recommendInt8Scheme();
  t.diagnostic(`full-range s8: ${(errs.s8! * 100).toFixed(2)}%, 7-bit: ${(errs['s8-reduced']! * 100).toFixed(2)}%, default (${rec.scheme}: ${rec.reason}): ${(errs.default! * 100).toFixed(2)}%`);
  // Quantization error of a well-conditioned product is a few percent; saturation gave 18%.
  assert.ok(errs.default! < 0.04, `default scheme error ${errs.default}`);
  assert.ok(errs['s8-reduced']! < 0.04);
});

/** x → MatMul(W1) → Gemm(transB, alpha, beta, bias) → Gemm(C as a full matrix) ; ids → Gather(table). */
function denseModel(): Model {
  const b = new GraphBuilder('dense');
  const x = b.input('x', DataType.FLOAT, ['n', 64]);
  const h1 = b.op('MatMul', [x, b.constant('w1', DataType.FLOAT, [64, 128], randn(10, 64 * 128, 0.1))], {}, { name: 'mm1' });
  const h2 = b.op('Gemm', [b.op('Relu', [h1]), b.constant('w2', DataType.FLOAT, [96, 128], randn(11, 96 * 128, 0.1)), b.constant('b2', DataType.FLOAT, [96], randn(12, 96))], { transB: 1, alpha: float(0.5), beta: float(2) }, { name: 'gemm2' });
  const h3 = b.op('Gemm', [h2, b.constant('w3', DataType.FLOAT, [96, 64], randn(13, 96 * 64, 0.1)), b.constant('c3', DataType.FLOAT, [4, 64], randn(14, 256))], {}, { name: 'gemm3' });
  const small = b.op('MatMul', [h3, b.constant('w4', DataType.FLOAT, [64, 8], randn(15, 512, 0.1))], {}, { name: 'small' });
  b.output(small, 'y', DataType.FLOAT, [4, 8]);
  const ids = b.input('ids', DataType.INT64, [4, 3]);
  b.output(b.op('Gather', [b.constant('table', DataType.FLOAT, [100, 64], randn(16, 6400)), ids], {}, { name: 'embed' }), 'e', DataType.FLOAT, [4, 3, 64]);
  return b.build();
}

const denseFeeds = () => ({
  x: Tensor.fromArray(DataType.FLOAT, [4, 64], randn(20, 256)),
  ids: Tensor.fromArray(DataType.INT64, [4, 3], [0, 5, 99, 7, 1, 2, 3, 50, 60, 70, 80, 90]),
});

async function runAll(m: Model, feeds: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
  const s = await createSession(m, { intraOpThreads: 1 });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.toArray() as Float32Array]));
  } finally {
    await s.release();
  }
}

test('int8 dynamic: MatMul, Gemm (transB, alpha, beta, bias, full C), Gather; both forms; stats; ORT fidelity', async () => {
  const feeds = denseFeeds();
  const ref = await runAll(denseModel(), feeds);
  for (const form of ['fused', 'standard'] as const) {
    for (const perChannel of [false, true]) {
      const r = await runPass(int8DynamicPass({ form, perChannel, weightScheme: 's8' }), denseModel());
      const st = r.stats as { quantized: Array<{ node: string }>; skipped: Array<{ node: string; detail: string }>; weightBytesBefore: number; weightBytesAfter: number };
      assert.deepEqual(st.quantized.map((q) => q.node), ['mm1', 'gemm2', 'gemm3', 'embed']);
      assert.deepEqual(st.skipped.map((s) => [s.node, s.detail]), [['small', 'small weight (512 < 4096 elements)']]);
      assert.ok(st.weightBytesAfter < st.weightBytesBefore * 0.27);
      const ops = r.model.graph.nodes.map((n) => n.opType);
      if (form === 'fused') assert.equal(ops.filter((o) => o === 'DynamicQuantizeMatMul').length, 3);
      else assert.ok(ops.includes('MatMulInteger') && !ops.includes('DynamicQuantizeMatMul') && !r.model.opsetImports.has('com.microsoft'));
      // The original float weights are gone; graph output names are kept.
      assert.ok(!r.model.graph.lookup('w1') && !r.model.graph.lookup('table'));
      const got = await runAll(r.model, feeds);
      assert.ok(relErr(got.y!, ref.y!) < 0.03, `${form} y error ${relErr(got.y!, ref.y!)}`);
      assert.ok(relErr(got.e!, ref.e!) < 0.01, `${form} e error ${relErr(got.e!, ref.e!)}`);
    }
  }
});

test('int8 dynamic: exclusions by name and op type, Conv modes, bad options', async () => {
  const r = await runPass(int8DynamicPass({ excludeNodes: ['mm1'], excludeOpTypes: ['Gather'], minElements: 0 }), denseModel());
  const st = r.stats as { quantized: Array<{ node: string }>; skipped: Array<{ node: string; detail: string }>; skippedByReason: Record<string, number> };
  assert.deepEqual(st.quantized.map((q) => q.node), ['gemm2', 'gemm3', 'small']);
  assert.deepEqual(st.skippedByReason, { 'excluded by name': 1, 'excluded op type Gather': 1 });
  assert.equal(r.model.graph.nodes.find((n) => n.name === 'mm1')!.opType, 'MatMul');
  await assert.rejects(runPass(int8DynamicPass({ excludeNodes: ['nope'] }), denseModel()), (e: unknown) => isFrugalError(e, 'E_USAGE') && /no node named 'nope'/.test((e as Error).message));
  assert.throws(() => int8DynamicPass({ conv: 'yes' as never }), /conv must be/);

  // Conv: float by default (said in stats), ConvInteger or weight-only on request; all run in ORT.
  const conv = () => {
    const b = new GraphBuilder('c');
    const x = b.input('x', DataType.FLOAT, [2, 8, 10, 10]);
    const y = b.op('Conv', [x, b.constant('w', DataType.FLOAT, [16, 8, 3, 3], randn(30, 16 * 72, 0.2)), b.constant('b', DataType.FLOAT, [16], randn(31, 16))], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }, { name: 'conv' });
    b.output(y, 'y', DataType.FLOAT, [2, 16, 10, 10]);
    return b.build();
  };
  const feeds = { x: Tensor.fromArray(DataType.FLOAT, [2, 8, 10, 10], randn(32, 1600)) };
  const ref = await run(conv(), feeds);
  const off = await runPass(int8DynamicPass({ minElements: 0 }), conv());
  assert.equal(off.modified, false);
  assert.match((off.stats as { skipped: Array<{ detail: string }> }).skipped[0]!.detail, /Conv left float/);
  assert.match(String(off.stats.conv), /ConvInteger is missing in onnxruntime-web/);
  for (const [mode, op] of [['integer', 'ConvInteger'], ['weight-only', 'DequantizeLinear']] as const) {
    for (const perChannel of [false, true]) {
      const r2 = await runPass(int8DynamicPass({ conv: mode, perChannel, minElements: 0 }), conv());
      assert.ok(r2.model.graph.nodes.some((n) => n.opType === op));
      const err = relErr(await run(r2.model, feeds), ref);
      assert.ok(err < 0.03, `${mode} perChannel=${perChannel}: ${err}`);
    }
  }
});

test('int8 dynamic on embeddings alone adds no com.microsoft opset import (nothing from that domain is emitted)', async () => {
  const b = new GraphBuilder('emb');
  const ids = b.input('ids', DataType.INT64, [4]);
  b.output(b.op('Gather', [b.constant('table', DataType.FLOAT, [100, 64], randn(60, 6400)), ids], {}, { name: 'embed' }), 'e', DataType.FLOAT, [4, 64]);
  const r = await runPass(int8DynamicPass({}), b.build({ opsetImports: { '': 17 } }));
  assert.ok(r.modified);
  assert.ok(r.model.graph.nodes.some((n) => n.opType === 'DequantizeLinear'));
  assert.equal(r.model.opsetImports.has('com.microsoft'), false);
});

test('int8 dynamic below opset 11: the fused form quantizes MatMul (a com.microsoft op), ops that need newer ONNX ops are skipped with the reason', async () => {
  const build = () => {
    const b = new GraphBuilder('old');
    const x = b.input('x', DataType.FLOAT, [4, 64]);
    const ids = b.input('ids', DataType.INT64, [4]);
    const y = b.op('MatMul', [x, b.constant('w', DataType.FLOAT, [64, 96], randn(50, 64 * 96, 0.1))], {}, { name: 'mm' });
    const e = b.op('Gather', [b.constant('table', DataType.FLOAT, [100, 64], randn(51, 6400)), ids], {}, { name: 'embed' });
    b.output(y, 'y', DataType.FLOAT, [4, 96]);
    b.output(e, 'e', DataType.FLOAT, [4, 64]);
    return b.build({ opsetImports: { '': 9 } });
  };
  const feeds = { x: Tensor.fromArray(DataType.FLOAT, [4, 64], randn(52, 256)), ids: Tensor.fromArray(DataType.INT64, [4], [3n, 0n, 99n, 42n] as unknown as number[]) };
  const ref = await run(build(), feeds);
  const r = await runPass(int8DynamicPass({ weightScheme: 's8' }), build());
  const st = r.stats as { quantized: Array<{ node: string }>; skipped: Array<{ node: string; detail: string }> };
  assert.deepEqual(st.quantized.map((q) => q.node), ['mm']);
  assert.deepEqual(st.skipped.map((q) => [q.node, q.detail]), [['embed', 'an int8 table needs DequantizeLinear (opset 10); the model imports opset 9']]);
  assert.equal(r.model.opset, 9, 'the default-domain opset is unchanged');
  assert.ok(relErr(await run(r.model, feeds), ref) < 0.03);
  await assert.rejects(runPass(int8DynamicPass({ form: 'standard' }), build()), (e: unknown) => isFrugalError(e, 'E_UNSUPPORTED') && /standard form needs ONNX opset 11/.test((e as Error).message));
});

/** A Conv whose output channels' weights span 0.1 ... 10 (×100): per-tensor weights crush the small ones. */
function skewedConv(): Model {
  const b = new GraphBuilder('skew');
  const x = b.input('x', DataType.FLOAT, ['n', 3, 8, 8]);
  const w = randn(40, 6 * 27, 1);
  for (let i = 0; i < w.length; i++) w[i]! *= 10 ** (0.4 * Math.floor(i / 27) - 1);
  const c = b.op('Conv', [x, b.constant('w', DataType.FLOAT, [6, 3, 3, 3], w), b.constant('b', DataType.FLOAT, [6], new Float32Array(6))], { kernel_shape: ints([3, 3]) }, { name: 'conv' });
  const flat = b.op('Flatten', [b.op('Relu', [c], {}, { name: 'relu' })], { axis: 1 });
  const scale = new Float32Array(6 * 36 * 4);
  // The classifier leans on the small channels (rows of channel c scaled by 10^(−0.2c)).
  for (let i = 0; i < scale.length; i++) scale[i] = 10 ** (-0.2 * Math.floor(i / 4 / 36)) * (i % 3 === 0 ? -1 : 1) * 0.1;
  b.output(b.op('Gemm', [flat, b.constant('wf', DataType.FLOAT, [216, 4], scale)], {}, { name: 'fc' }), 'y', DataType.FLOAT, ['n', 4]);
  return b.build();
}

const skewFeeds = (seed: number, n = 8) => ({ x: Tensor.fromArray(DataType.FLOAT, [n, 3, 8, 8], randn(seed, n * 192)) });

test('int8 static: QDQ around Conv/Relu/Gemm, int32 bias, removed Relu, per-channel ≥ per-tensor, int8 activations', async (t) => {
  const calib = calibrationFromFeeds([skewFeeds(1, 16), skewFeeds(2, 16)]);
  const feeds = skewFeeds(3);
  const ref = await run(skewedConv(), feeds);
  const errs: Record<string, number> = {};
  for (const perChannel of [false, true]) {
    const r = await runPass(int8StaticPass({ calibration: calib, perChannel, weightScheme: 's8' }), skewedConv());
    const st = r.stats as { quantized: Array<{ node: string; detail: string }>; qdqPairs: number; calibration: { examples: number; method: string } };
    assert.deepEqual(st.quantized.map((q) => q.node), ['relu', 'conv', 'fc']);
    assert.match(st.quantized[0]!.detail, /removed: folded into conv/);
    assert.match(st.quantized[1]!.detail, /int32 bias/);
    assert.deepEqual(st.calibration.examples, 32);
    const ops = r.model.graph.nodes.map((n) => n.opType);
    assert.ok(!ops.includes('Relu'));
    // x, conv output (Relu's range), Flatten output (same parameters): three activation pairs.
    assert.equal(st.qdqPairs, 3);
    assert.equal(ops.filter((o) => o === 'QuantizeLinear').length, 3);
    const bias = r.model.graph.initializers().find((v) => v.name.startsWith('b_quantized'))!;
    assert.equal(bias.initializer!.dtype, DataType.INT32);
    errs[perChannel ? 'perChannel' : 'perTensor'] = relErr(await run(r.model, feeds), ref);
  }
  t.diagnostic(`skewed Conv, static int8 output error: per-tensor ${(errs.perTensor! * 100).toFixed(2)}%, per-channel ${(errs.perChannel! * 100).toFixed(2)}%`);
  assert.ok(errs.perChannel! <= errs.perTensor!, JSON.stringify(errs));
  assert.ok(errs.perChannel! < 0.05, JSON.stringify(errs));
  // Symmetric int8 activations keep Relu (a zero point at the middle cannot clamp).
  const r8 = await runPass(int8StaticPass({ calibration: calib, activations: 'int8', perChannel: true }), skewedConv());
  assert.ok(r8.model.graph.nodes.some((n) => n.opType === 'Relu'));
  assert.ok(r8.model.graph.initializers().some((v) => v.name.endsWith('zero_point') && v.initializer!.dtype === DataType.INT8 && v.initializer!.dims.length === 0));
  assert.ok(relErr(await run(r8.model, feeds), ref) < 0.08);
  // Exclusion: the excluded node stays float, its neighbours are still quantized.
  const rx = await runPass(int8StaticPass({ calibration: calib, excludeNodes: ['fc'] }), skewedConv());
  assert.equal(rx.model.graph.nodes.find((n) => n.name === 'fc')!.inputs[1]!.name, 'wf');
  assert.deepEqual((rx.stats as { skipped: Array<{ node: string; detail: string }> }).skipped, [{ node: 'fc', opType: 'Gemm', detail: 'excluded by name' }]);
  assert.throws(() => int8StaticPass({} as never), /needs calibration data/);
});

test('calibration: percentile and entropy clip a heavy-tailed activation that minmax keeps whole', async (t) => {
  const b = new GraphBuilder('tail');
  const x = b.input('x', DataType.FLOAT, ['n', 256]);
  b.output(b.op('Abs', [x], {}, { name: 'abs' }), 'y', DataType.FLOAT, ['n', 256]);
  const m = b.build();
  // Cauchy-distributed inputs: a few huge values among many small ones.
  const r = createRng(7);
  const batches = [0, 1, 2].map(() => ({ x: Tensor.fromArray(DataType.FLOAT, [64, 256], Float32Array.from({ length: 64 * 256 }, () => Math.max(-1e6, Math.min(1e6, Math.tan(Math.PI * (r.next() - 0.5)))))) }));
  const data = calibrationFromFeeds(batches);
  // 99.9: with 49,152 samples, the default 99.999 would keep all but half a sample.
  const get = async (method: 'minmax' | 'percentile' | 'entropy') => (await calibrate(m, ['x', 'y'], data, { method, percentile: 99.9 })).get('x')!;
  const mm = await get('minmax');
  const pc = await get('percentile');
  const en = await get('entropy');
  assert.ok(pc.max < mm.max && pc.min > mm.min, `${JSON.stringify(pc)} vs ${JSON.stringify(mm)}`);
  assert.ok(en.max < mm.max && en.max !== pc.max, `${JSON.stringify(en)}`);
  t.diagnostic(`heavy-tailed x: minmax [${mm.min.toFixed(0)}, ${mm.max.toFixed(0)}], percentile 99.9 [${pc.min.toFixed(1)}, ${pc.max.toFixed(1)}], entropy [${en.min.toFixed(1)}, ${en.max.toFixed(1)}]`);
  // minmax is exact.
  let lo = Infinity;
  let hi = -Infinity;
  for (const f of batches) for (const v of f.x.toArray() as Float32Array) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  assert.deepEqual(mm, { min: lo, max: hi });
  await assert.rejects(calibrate(m, ['nope'], data), /no tensor named 'nope'/);
});

const TEACHER = 'models/mnist-cnn.onnx';

test('MNIST teacher: int8 dynamic and static lose ≤ 0.5 accuracy point on the real test split; static ≤ 0.27× the size', { skip: !existsSync(TEACHER) && `${TEACHER} absent` }, async (t) => {
  const fp32 = await loadModel(TEACHER);
  const base = (await evaluateModel(fp32, 'mnist')).accuracy;
  const fpBytes = encodeModelToBytes(fp32).byteLength;
  const calib = await calibrationFeeds(fp32, 'mnist', { count: 256 });
  assert.match(calib.source, /^mnist:train/);
  const dyn = await runPass(int8DynamicPass(), clone(fp32));
  const stat = await runPass(int8StaticPass({ calibration: calib }), clone(fp32));
  const statPc = await runPass(int8StaticPass({ calibration: calib, method: 'percentile', perChannel: true }), clone(fp32));
  const report: string[] = [];
  for (const [name, r, maxRatio] of [['dynamic', dyn, 0.3], ['static', stat, 0.27], ['static percentile per-channel', statPc, 0.27]] as const) {
    const acc = (await evaluateModel(r.model, 'mnist')).accuracy;
    const ratio = encodeModelToBytes(r.model).byteLength / fpBytes;
    report.push(`${name}: accuracy ${(acc * 100).toFixed(2)}% (fp32 ${(base * 100).toFixed(2)}%, drop ${((base - acc) * 100).toFixed(2)} pt), size ${ratio.toFixed(3)}×`);
    assert.ok(base - acc <= 0.005, `${name}: ${acc} vs ${base}`);
    assert.ok(ratio <= maxRatio, `${name}: size ratio ${ratio}`);
  }
  t.diagnostic(report.join('; '));
  // Stats say what happened: the dynamic pass quantizes the hidden Gemm, leaves Conv float (and why).
  const ds = dyn.stats as { quantized: Array<{ node: string }>; skippedByReason: Record<string, number> };
  assert.deepEqual(ds.quantized.map((q) => q.node), ['hidden']);
  assert.deepEqual(ds.skippedByReason, { 'Conv left float': 2, 'small weight': 1 });
  const ss = stat.stats as { quantized: Array<{ node: string }> };
  assert.deepEqual(ss.quantized.map((q) => q.node).sort(), ['conv1', 'conv1.relu', 'conv2', 'conv2.relu', 'fc', 'hidden', 'hidden.relu']);
  // ORT's CPU provider turns the QDQ graph into integer kernels (what makes it faster than fp32).
  const dir = mkdtempSync(path.join(tmpdir(), 'frugal-qdq-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const s = await createSession(stat.model, { ortOptions: { optimizedModelFilePath: file } });
    await s.release();
    const ops = (await loadModel(file)).graph.nodes.map((n) => n.opType);
    assert.ok(ops.includes('QLinearConv') && ops.includes('QGemm'), ops.join(','));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('int8 static: integer shape arithmetic (untyped in the file) is never tapped for calibration', async () => {
  // y = Reshape(MatMul(x, W), [rows + 0, -1]) where "rows + 0" is int64 Add on Shape output: an Add the
  // QDQ table knows, on tensors whose type the file does not declare.
  const b = new GraphBuilder('shape-math');
  const x = b.input('x', DataType.FLOAT, ['n', 8]);
  const rng = createRng(5);
  const w = b.constant('w', DataType.FLOAT, [8, 8], Float32Array.from({ length: 64 }, () => rng.normal()));
  const y = b.op('MatMul', [x, w]);
  const rows = b.op('Slice', [b.op('Shape', [y]), b.constant('s0', DataType.INT64, [1], [0]), b.constant('s1', DataType.INT64, [1], [1])]);
  const rows2 = b.op('Add', [rows, b.constant('zero', DataType.INT64, [1], [0])]);
  const target = b.op('Concat', [rows2, b.constant('m1', DataType.INT64, [1], [-1])], { axis: 0 });
  b.output(b.op('Reshape', [b.op('Relu', [y]), target]), 'out', DataType.FLOAT, ['n', 8]);
  const model = b.build();
  for (const v of model.graph.values.values()) if (!v.isGraphInput && !v.isGraphOutput && !v.initializer) v.type = undefined;
  const feeds = [0, 1, 2].map((i) => ({ x: Tensor.fromArray(DataType.FLOAT, [4, 8], Float32Array.from({ length: 32 }, (_, k) => Math.sin(k + i))) }));
  const r = await runPass(int8StaticPass({ calibration: calibrationFromFeeds(feeds) }), model);
  const s = await createSession(r.model);
  const out = (await s.run(feeds[0]!)).out!;
  assert.deepEqual(out.dims, [4, 8]);
  await s.release();
});
