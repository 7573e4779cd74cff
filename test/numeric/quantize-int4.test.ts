/**
 * int4 weight-only quantization, proven in ORT. The reference for every rewritten graph is computed here
 * in plain JS from the model's own packed bytes, unpacked the way the op specs describe (MatMulNBits:
 * B [N, k_blocks, blob], per-row packed zero points; GatherBlockQuantized and DequantizeLinear: ONNX
 * 4-bit tensors packed across the whole tensor). A tight match means ORT reads the bytes as intended:
 * the guard against silently wrong int4 output. Only float outputs are ever fetched.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fp16Pass } from '../../src/passes/precision/index.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import type { Node } from '../../src/ir/node.js';
import { float } from '../../src/ir/node.js';
import { Tensor } from '../../src/ir/tensor.js';
import { float16BitsToFloat32Array, float32ToFloat16Bits } from '../../src/onnx/packing.js';
import { decodeModel, encodeModelToBytes, loadModel } from '../../src/onnx/index.js';
import { runPass } from '../../src/passes/pass.js';
import { applyQuantizeMode } from '../../src/passes/registry.js';
import { elemTypeOf, shapeOf } from '../../src/ir/types.js';
import { randomFeeds } from '../../src/runtime/feeds.js';
import { int4WeightOnlyPass, type Int4Stats } from '../../src/passes/quantize/int4-index.js';
import { createSession } from '../../src/runtime/index.js';
import { evaluateModel } from '../../src/evaluation/index.js';
import { createRng } from '../../src/util/rng.js';
import { buildZooModel } from '../../src/zoo/index.js';

const clone = (m: Model): Model => decodeModel(encodeModelToBytes(m));

function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

async function run(m: Model, feeds: Record<string, Tensor>, opts: Parameters<typeof createSession>[1] = {}): Promise<Float32Array> {
  const s = await createSession(m, opts);
  try {
    return (await s.run(feeds)).y!.toArray() as Float32Array;
  } finally {
    await s.release();
  }
}

function nibble(bytes: Uint8Array, i: number): number {
  return i & 1 ? bytes[i >> 1]! >> 4 : bytes[i >> 1]! & 15;
}

function initializer(m: Model, node: Node, i: number): Tensor {
  const v = node.inputs[i];
  assert.ok(v?.initializer, `${node.describe()} input ${i} is a constant`);
  return v.initializer;
}

/** Dequantized W [K, N] from a MatMulNBits node, per the contrib op spec. */
function dequantMatMulNBits(m: Model, node: Node): { W: Float32Array; bias: Float32Array | undefined } {
  const K = node.attrInt('K', 0);
  const N = node.attrInt('N', 0);
  const bs = node.attrInt('block_size', 0);
  const kb = Math.ceil(K / bs);
  const B = initializer(m, node, 1);
  assert.deepEqual(B.dims, [N, kb, bs / 2]);
  const bytes = B.bytes();
  const scales = initializer(m, node, 2).toArray() as Float32Array;
  assert.equal(scales.length, N * kb);
  const zpT = node.inputs[3]?.initializer;
  const zpRow = Math.ceil(kb / 2);
  if (zpT) assert.deepEqual(zpT.dims, [N, zpRow]);
  const W = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / bs);
      const q = nibble(bytes, (n * kb + b) * bs + (k % bs));
      const zp = zpT ? nibble(zpT.bytes(), 2 * (n * zpRow) + b) : 8;
      W[k * N + n] = (q - zp) * scales[n * kb + b]!;
    }
  }
  const bias = node.inputs[5]?.initializer?.toArray() as Float32Array | undefined;
  return { W, bias };
}

function matmul(x: Float32Array, W: Float32Array, M: number, K: number, N: number, bias?: Float32Array): Float32Array {
  const y = new Float32Array(M * N);
  for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) {
    let s = bias ? bias[n]! : 0;
    for (let k = 0; k < K; k++) s += x[i * K + k]! * W[k * N + n]!;
    y[i * N + n] = s;
  }
  return y;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}
const maxAbs = (a: Float32Array): number => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

function matmulModel(K: number, N: number, seed: number, gemm?: { transB: boolean; alpha: number; beta: number }): Model {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, ['m', K]);
  const w = randn(K * N, seed, 0.2);
  let y;
  if (gemm) {
    const wT = new Float32Array(K * N);
    if (gemm.transB) for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) wT[n * K + k] = w[k * N + n]!;
    const W = b.constant('W', DataType.FLOAT, gemm.transB ? [N, K] : [K, N], gemm.transB ? wT : w);
    const C = b.constant('C', DataType.FLOAT, [N], randn(N, seed + 1));
    y = b.op('Gemm', [x, W, C], { transB: gemm.transB ? 1 : 0, alpha: float(gemm.alpha), beta: float(gemm.beta) });
  } else {
    y = b.op('MatMul', [x, b.constant('W', DataType.FLOAT, [K, N], w)]);
  }
  b.output(y, 'y', DataType.FLOAT, ['m', N]);
  return b.build({ opsetImports: { '': 17 } });
}

const CASES = [
  { K: 64, N: 24, blockSize: 16, symmetric: true },
  { K: 100, N: 40, blockSize: 32, symmetric: false },
  { K: 300, N: 17, blockSize: 64, symmetric: true },
  { K: 256, N: 48, blockSize: 128, symmetric: false },
  { K: 70, N: 33, blockSize: 256, symmetric: false },
  { K: 96, N: 8, blockSize: 32, symmetric: true, gemm: { transB: true, alpha: 0.5, beta: 2 } },
  { K: 80, N: 12, blockSize: 16, symmetric: false, gemm: { transB: false, alpha: 1.5, beta: 1 } },
] as const;

for (const c of CASES) {
  const label = `${'gemm' in c ? `Gemm(transB=${c.gemm.transB})` : 'MatMul'} K=${c.K} N=${c.N} block ${c.blockSize} ${c.symmetric ? 'symmetric' : 'asymmetric'}`;
  test(`int4 MatMulNBits: ${label} matches the spec's dequantize-then-matmul`, async () => {
    const M = 5;
    const fp32 = matmulModel(c.K, c.N, c.K + c.N, 'gemm' in c ? c.gemm : undefined);
    const x = randn(M * c.K, 7);
    const feeds = { x: Tensor.fromArray(DataType.FLOAT, [M, c.K], x) };
    const yRef32 = await run(clone(fp32), feeds);
    const r = await runPass(int4WeightOnlyPass({ blockSize: c.blockSize, symmetric: c.symmetric, minElements: 0 }), fp32);
    const stats = r.stats as Int4Stats;
    assert.deepEqual(stats.quantized, { ['gemm' in c ? 'Gemm' : 'MatMul']: 1 });
    assert.equal(stats.padded, c.K % c.blockSize ? 1 : 0);
    const node = r.model.graph.nodes.find((n) => n.opType === 'MatMulNBits')!;
    assert.equal(node.domain, 'com.microsoft');
    assert.equal(node.inputs.length > 3 && node.inputs[3] !== null, !c.symmetric, 'zero points only when asymmetric');
    assert.ok(!r.model.graph.values.has('W'), 'the float weight is gone');
    const { W, bias } = dequantMatMulNBits(r.model, node);
    const y = await run(r.model, feeds);
    const ref = matmul(x, W, M, c.K, c.N, bias);
    // Same arithmetic up to float32 summation order.
    assert.ok(maxAbsDiff(y, ref) <= 1e-4 * Math.max(1, maxAbs(ref)), `ORT vs spec reference: ${maxAbsDiff(y, ref)}`);
    // And the quantized weight is close to the original: 4-bit blocks keep the product within ~10%.
    const rel = maxAbsDiff(y, yRef32) / maxAbs(yRef32);
    assert.ok(rel < 0.12, `int4 vs fp32 relative error ${rel}`);
    assert.ok(stats.bytesAfter < stats.bytesBefore);
  });
}

test('int4 GatherBlockQuantized embeddings (int4 symmetric, uint4 + zero points across rows) match the spec', async () => {
  for (const [symmetric, embeddingScales] of [[true, 'float16'], [false, 'float16'], [true, 'float32'], [false, 'float32']] as const) {
    const V = 37;
    const D = 96; // 3 blocks of 32 per row: an odd count, so uint4 zero points straddle row boundaries
    const b = new GraphBuilder('g');
    const ids = b.input('ids', DataType.INT64, [2, 6]);
    const table = randn(V * D, 11, 0.5);
    const y = b.op('Gather', [b.constant('emb', DataType.FLOAT, [V, D], table), ids]);
    b.output(y, 'y', DataType.FLOAT, [2, 6, D]);
    const m = b.build();
    const idx = [0, 36, 5, 5, 17, 1, 2, 3, 30, 31, 12, 20];
    const feeds = { ids: Tensor.fromArray(DataType.INT64, [2, 6], idx) };
    const r = await runPass(int4WeightOnlyPass({ symmetric, embeddingScales, minElements: 0 }), m);
    assert.deepEqual((r.stats as Int4Stats).quantized, { Gather: 1 });
    const node = r.model.graph.nodes.find((n) => n.opType === 'GatherBlockQuantized')!;
    assert.equal(node.qualifiedOp, 'com.microsoft::GatherBlockQuantized');
    const data = initializer(r.model, node, 0);
    assert.equal(data.dtype, symmetric ? DataType.INT4 : DataType.UINT4);
    const sT = initializer(r.model, node, 2);
    assert.equal(sT.dtype, embeddingScales === 'float16' ? DataType.FLOAT16 : DataType.FLOAT);
    const scales = sT.dtype === DataType.FLOAT16 ? float16BitsToFloat32Array(sT.toArray() as Uint16Array) : (sT.toArray() as Float32Array);
    const zp = node.inputs[3]?.initializer;
    const out = await run(r.model, feeds);
    const ref = new Float32Array(idx.length * D);
    idx.forEach((v, j) => {
      for (let d = 0; d < D; d++) {
        const raw = nibble(data.bytes(), v * D + d);
        const q = symmetric ? (raw >= 8 ? raw - 16 : raw) : raw;
        const blk = v * 3 + Math.floor(d / 32);
        const z = zp ? nibble(zp.bytes(), blk) : 0;
        ref[j * D + d] = Math.fround((q - z) * scales[blk]!);
        // float16 scales make the op's output float16: the product is rounded once more.
        if (sT.dtype === DataType.FLOAT16) ref[j * D + d] = float16BitsToFloat32Array(float32ToFloat16Bits([ref[j * D + d]!]))[0]!;
      }
    });
    assert.ok(maxAbsDiff(out, ref) <= 1e-6, `ORT vs spec reference: ${maxAbsDiff(out, ref)}`);
    const orig = Float32Array.from(idx.flatMap((v) => Array.from(table.subarray(v * D, (v + 1) * D))));
    assert.ok(maxAbsDiff(out, orig) / maxAbs(orig) < 0.1);
  }
});

test('int4 QDQ form: blocked DequantizeLinear at opset 21 (K padded) matches the spec', async () => {
  for (const symmetric of [true, false]) {
    const K = 80; // 3 blocks of 32, the last padded
    const N = 20;
    const m = matmulModel(K, N, 3);
    const x = randn(4 * K, 5);
    const feeds = { x: Tensor.fromArray(DataType.FLOAT, [4, K], x) };
    const r = await runPass(int4WeightOnlyPass({ format: 'qdq', symmetric, minElements: 0 }), m);
    const stats = r.stats as Int4Stats;
    assert.equal(stats.opsetRaisedFrom, 17);
    assert.equal(r.model.opset, 21);
    const dq = r.model.graph.nodes.find((n) => n.opType === 'DequantizeLinear')!;
    assert.equal(dq.attrInt('block_size', 0), 32);
    const q = initializer(r.model, dq, 0);
    const s = initializer(r.model, dq, 1).toArray() as Float32Array;
    assert.deepEqual(initializer(r.model, dq, 1).dims, [3, N]);
    const zp = dq.inputs[2]?.initializer;
    const W = new Float32Array(K * N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) {
      const raw = nibble(q.bytes(), k * N + n);
      const v = symmetric ? (raw >= 8 ? raw - 16 : raw) : raw;
      const bi = Math.floor(k / 32) * N + n;
      W[k * N + n] = (v - (zp ? nibble(zp.bytes(), bi) : 0)) * s[bi]!;
    }
    const ref = matmul(x, W, 4, K, N);
    // ORT 1.30 fuses DequantizeLinear(blocked int4) + MatMul into MatMulNBits with accuracy level 4
    // (activations quantized to int8) unless told otherwise; with level 1 (fp32) the product is exact.
    const exact = await run(r.model, feeds, { ortOptions: { extra: { session: { qdq_matmulnbits_accuracy_level: '1' } } } });
    assert.ok(maxAbsDiff(exact, ref) <= 1e-4 * Math.max(1, maxAbs(ref)), `ORT vs spec reference: ${maxAbsDiff(exact, ref)}`);
    const fused = await run(r.model, feeds);
    const rel = maxAbsDiff(fused, ref) / maxAbs(ref);
    console.log(`qdq ${symmetric ? 'symmetric' : 'asymmetric'}: default session (int8 activations) differs by ${rel.toExponential(2)} relative`);
    assert.ok(rel < 0.05);
  }
});

test('int4 skips what it cannot quantize and says why', async () => {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, [2, 64]);
  const w2 = b.input('w2', DataType.FLOAT, [64, 64]);
  const h = b.op('MatMul', [x, w2], {}, { name: 'dynamic' });
  const small = b.op('MatMul', [h, b.constant('Ws', DataType.FLOAT, [64, 4], randn(256, 1))], {}, { name: 'small' });
  const t = b.op('MatMul', [small, b.constant('Wt', DataType.FLOAT, [4, 64], randn(256, 2))], {}, { name: 'tinyK' });
  const y = b.op('MatMul', [t, b.constant('Wx', DataType.FLOAT, [64, 64], randn(4096, 3))], {}, { name: 'excluded' });
  b.output(y, 'y', DataType.FLOAT, [2, 64]);
  const r = await runPass(int4WeightOnlyPass({ minElements: 200, excludeNodes: ['excluded'] }), b.build());
  const reasons = Object.fromEntries((r.stats as Int4Stats).skipped.map((s) => [s.node, s.reason]));
  assert.match(reasons['dynamic']!, /not a constant/);
  assert.match(reasons['tinyK']!, /K = 4 is smaller/);
  assert.match(reasons['excluded']!, /excluded/);
  assert.deepEqual((r.stats as Int4Stats).quantized, { MatMul: 1 });
  assert.equal(r.modified, true);
});

test('int4 on the MNIST teacher: accuracy drop <= 1 point on the real test split', async () => {
  const fp32 = await loadModel('models/mnist-cnn.onnx');
  const base = await evaluateModel(fp32, 'mnist');
  const r = await runPass(int4WeightOnlyPass(), clone(fp32));
  const stats = r.stats as Int4Stats;
  assert.deepEqual(stats.quantized, { Gemm: 2 });
  const q = await evaluateModel(r.model, 'mnist');
  const drop = (base.accuracy - q.accuracy) * 100;
  const ratio = encodeModelToBytes(r.model).byteLength / encodeModelToBytes(fp32).byteLength;
  console.log(`mnist-cnn int4: accuracy ${base.accuracy} -> ${q.accuracy} (drop ${drop.toFixed(2)} points), file ${ratio.toFixed(3)}x`);
  assert.ok(drop <= 1, `accuracy drop ${drop} points`);
});

test('int4 on the spam transformer teacher: accuracy drop <= 1 point', { skip: !existsSync('models/spam-transformer.onnx') && 'models/spam-transformer.onnx not built yet' }, async () => {
  const fp32 = await loadModel('models/spam-transformer.onnx');
  const base = await evaluateModel(fp32, 'spam');
  const r = await runPass(int4WeightOnlyPass(), clone(fp32));
  const q = await evaluateModel(r.model, 'spam');
  const drop = (base.accuracy - q.accuracy) * 100;
  const ratio = encodeModelToBytes(r.model).byteLength / encodeModelToBytes(fp32).byteLength;
  console.log(`spam-transformer int4: accuracy ${base.accuracy} -> ${q.accuracy} (drop ${drop.toFixed(2)} points), file ${ratio.toFixed(3)}x, ${JSON.stringify((r.stats as Int4Stats).quantized)}`);
  assert.ok(drop <= 1, `accuracy drop ${drop} points`);
});

test('int4 file size of the BERT-base-shaped zoo encoder is <= 0.16x fp32 (encoded, not run)', async () => {
  const m = buildZooModel('bert-base');
  const before = encodeModelToBytes(m).byteLength;
  const r = await runPass(int4WeightOnlyPass(), m, { verify: false });
  const after = encodeModelToBytes(r.model).byteLength;
  const stats = r.stats as Int4Stats;
  console.log(`bert-base int4: ${before} -> ${after} bytes (${(after / before).toFixed(4)}x), quantized ${JSON.stringify(stats.quantized)}, skipped ${stats.skipped.length}`);
  assert.ok(after / before <= 0.16, `size ratio ${after / before}`);
});

test('int4 and fp16 reject an excluded node name the model does not have (a typo would exclude nothing)', async () => {
  const m = buildZooModel('mlp');
  await assert.rejects(runPass(int4WeightOnlyPass({ excludeNodes: ['no-such-node'] }), m), (e: Error & { code?: string }) => e.code === 'E_USAGE' && /no-such-node/.test(e.message));
  await assert.rejects(runPass(fp16Pass({ excludeNodes: ['no-such-node'] }), buildZooModel('mlp')), (e: Error & { code?: string }) => e.code === 'E_USAGE' && /no-such-node/.test(e.message));
});

test('q4f16: MatMulNBits and GatherBlockQuantized in float16 (inferred types), outputs within fp16 rounding of int4', async () => {
  // The transformer zoo model has both an embedding (Gather) and MatMuls with constant weights.
  const fp32 = buildZooModel('transformer-tiny');
  const int4 = (await applyQuantizeMode(clone(fp32), 'int4')).model;
  const q = await applyQuantizeMode(clone(fp32), 'q4f16');
  const nbits = q.model.graph.nodes.filter((n) => n.opType === 'MatMulNBits');
  assert.ok(nbits.length > 0);
  for (const n of nbits) {
    assert.equal(elemTypeOf(n.inputs[0]!.type), DataType.FLOAT16, `${n.name}: A is float16`);
    assert.equal(n.inputs[2]!.initializer?.dtype, DataType.FLOAT16, `${n.name}: scales are float16`);
    // Shape inference knows MatMulNBits: A's shape with the last dim N.
    assert.deepEqual(shapeOf(n.outputs[0]!.type)?.at(-1), n.attrInt('N', 0));
    assert.equal(elemTypeOf(n.outputs[0]!.type), DataType.FLOAT16);
  }
  const gbq = q.model.graph.nodes.find((n) => n.opType === 'GatherBlockQuantized')!;
  assert.equal(elemTypeOf(gbq.outputs[0]!.type), DataType.FLOAT16);
  assert.ok(!gbq.outputs[0]!.uses.some((u) => u.node.opType === 'Cast'), 'no Cast to float32 and back after the embedding');
  assert.ok(encodeModelToBytes(q.model).byteLength < encodeModelToBytes(int4).byteLength, 'smaller than int4 (float16 scales and leftover weights)');
  // Same inputs through both: q4f16 differs from int4 by float16 rounding of activations only.
  const a = await createSession(int4);
  const b = await createSession(q.model);
  try {
    const feeds = randomFeeds(a.inputs, { seed: 3, dims: { batch: 2, seq: 64 }, intRanges: { input_ids: [0, 500] } });
    const ya = (await a.run(feeds)).logits!.toArray() as Float32Array;
    const yb = (await b.run(feeds)).logits!.toArray() as Float32Array;
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = 0; i < ya.length; i++) {
      dot += ya[i]! * yb[i]!;
      na += ya[i]! ** 2;
      nb += yb[i]! ** 2;
    }
    const cos = dot / Math.sqrt(na * nb);
    assert.ok(cos > 0.999, `cosine ${cos} between int4 and q4f16 logits`);
  } finally {
    await a.release();
    await b.release();
  }
});
