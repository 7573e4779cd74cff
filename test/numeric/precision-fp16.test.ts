/**
 * float16 / bfloat16 conversion, proven in ORT's CPU provider: io types stay float32, outputs match
 * fp32 within a tolerance fit for 11-bit (float16) or 8-bit (bfloat16) mantissas, stats are what the
 * graph implies, and the teachers keep their accuracy on real test data.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { elemTypeOf } from '../../src/ir/types.js';
import { decodeModel, encodeModelToBytes, loadModel } from '../../src/onnx/index.js';
import { runPass } from '../../src/passes/pass.js';
import { fp16Pass, type Fp16Stats } from '../../src/passes/precision/index.js';
import { createSession, feedSpecsOf, randomFeeds } from '../../src/runtime/index.js';
import { evaluateModel } from '../../src/evaluation/index.js';
import { buildZooModel } from '../../src/zoo/index.js';

const clone = (m: Model): Model => decodeModel(encodeModelToBytes(m));

async function outputs(m: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const s = await createSession(m);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

/** A small graph with every case the pass handles: blocked op, big constant, graph-output Cast, Cast chain. */
function mixedModel(): Model {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, ['n', 8]);
  const w = b.constant('w', DataType.FLOAT, [8, 8], Float32Array.from({ length: 64 }, (_, i) => Math.cos(i) * 0.5));
  const big = b.constant('big', DataType.FLOAT, [8], Float32Array.from({ length: 8 }, (_, i) => (i === 0 ? 1e6 : i === 1 ? -7e4 : 0.25)));
  const h = b.op('Relu', [b.op('MatMul', [x, w])]);
  const e = b.op('Exp', [b.op('Mul', [h, b.constant('k', DataType.FLOAT, [], [0.1])])]); // Exp stays float32
  const c = b.op('Cast', [b.op('Cast', [e], { to: DataType.FLOAT })], { to: DataType.FLOAT }); // no-op Casts
  const m = b.op('Min', [b.op('Add', [c, h]), big]); // big constants clipped: still larger than any output here
  b.output(b.op('Softmax', [m]), 'y', DataType.FLOAT, ['n', 8]);
  b.output(h, 'h', DataType.FLOAT, ['n', 8]);
  return b.build({ opsetImports: { '': 17 } });
}

test('fp16: io stays float32, blocked ops stay float32, constants clipped, no-op Casts removed; ORT matches fp32', async () => {
  const m = mixedModel();
  const feeds = randomFeeds(feedSpecsOf(m), { seed: 4, dims: { n: 6 } });
  const ref = await outputs(clone(m), feeds);
  const r = await runPass(fp16Pass(), m);
  const s = r.stats as Fp16Stats;
  assert.deepEqual(s.keptFloat32, { Exp: { count: 1, reason: 'overflow-prone in float16 (max 65504)', code: 'blocked' } });
  assert.equal(s.clipped, 2, 'two finite constants beyond ±65504');
  assert.equal(s.initializersConverted, 3);
  // Cast(to=float)(Exp) becomes the float32→float16 Cast the converted Add needs; the second Cast,
  // now float16→float16, goes.
  assert.equal(s.castsRemoved, 1);
  assert.equal(r.model.graph.nodes.filter((n) => n.opType === 'Cast').length, 1 + s.castsInserted);
  for (const v of [...r.model.graph.inputs, ...r.model.graph.outputs]) assert.equal(elemTypeOf(v.type), DataType.FLOAT, `${v.name} keeps float32`);
  assert.equal(r.model.graph.values.get('w')!.initializer!.dtype, DataType.FLOAT16);
  assert.ok(s.bytesAfter < s.bytesBefore * 0.55);
  const got = await outputs(r.model, feeds);
  for (const k of ['y', 'h']) {
    assert.equal(got[k]!.dtype, DataType.FLOAT);
    const e = relErr(got[k]!.toArray() as Float32Array, ref[k]!.toArray() as Float32Array);
    assert.ok(e < 4e-3, `${k}: relative error ${e}`); // float16 keeps 11 significant bits (2^-11 ≈ 5e-4 per rounding)
  }
});

test('bf16 on the CPU table: weights stored in bfloat16, compute in float32, ORT matches fp32', async () => {
  const m = mixedModel();
  const feeds = randomFeeds(feedSpecsOf(m), { seed: 5, dims: { n: 3 } });
  const ref = await outputs(clone(m), feeds);
  const r = await runPass(fp16Pass({ to: 'bfloat16' }), m);
  const s = r.stats as Fp16Stats;
  assert.equal(s.convertedNodes, 0, 'the CPU provider has no bfloat16 compute kernels');
  assert.equal(r.model.graph.values.get('w')!.initializer!.dtype, DataType.FLOAT, 'read only by float32 nodes: kept');
  const got = await outputs(r.model, feeds);
  assert.ok(relErr(got['y']!.toArray() as Float32Array, ref['y']!.toArray() as Float32Array) < 1e-6);
  // With the provider-independent table, bfloat16 weights and ops; run in ORT only where kernels exist.
  const any = await runPass(fp16Pass({ to: 'bfloat16', provider: 'any' }), clone(m));
  assert.equal(any.model.graph.values.get('w')!.initializer!.dtype, DataType.BFLOAT16);
  assert.ok((any.stats as Fp16Stats).convertedNodes > 0);
});

test('fp16 on the transformer zoo model: runs in ORT with float32 io and matches fp32', async () => {
  const m = buildZooModel('transformer-tiny');
  const feeds = randomFeeds(feedSpecsOf(m), { seed: 9, dims: { batch: 2, seq: 32 } });
  const ref = await outputs(clone(m), feeds);
  const r = await runPass(fp16Pass(), m);
  const got = await outputs(r.model, feeds);
  const e = relErr(got['logits']!.toArray() as Float32Array, ref['logits']!.toArray() as Float32Array);
  console.log(`transformer-tiny fp16: logits relative error ${e.toExponential(2)}, kept float32 ${JSON.stringify((r.stats as Fp16Stats).keptFloat32)}`);
  assert.ok(e < 2e-2, `relative error ${e}`);
});

for (const t of [
  { file: 'models/mnist-cnn.onnx', dataset: 'mnist' },
  { file: 'models/spam-transformer.onnx', dataset: 'spam' },
] as const) {
  test(`fp16 on ${t.file}: accuracy drop <= 0.5 point, file about half`, { skip: !existsSync(t.file) && `${t.file} not built yet` }, async () => {
    const fp32 = await loadModel(t.file);
    const base = await evaluateModel(fp32, t.dataset);
    const r = await runPass(fp16Pass(), clone(fp32));
    const q = await evaluateModel(r.model, t.dataset);
    const drop = (base.accuracy - q.accuracy) * 100;
    const ratio = encodeModelToBytes(r.model).byteLength / encodeModelToBytes(fp32).byteLength;
    const s = r.stats as Fp16Stats;
    console.log(`${t.file} fp16: accuracy ${base.accuracy} -> ${q.accuracy} (drop ${drop.toFixed(2)}), file ${ratio.toFixed(3)}x, casts +${s.castsInserted}/-${s.castsRemoved}, clipped ${s.clipped}`);
    assert.ok(drop <= 0.5, `accuracy drop ${drop} points`);
    assert.ok(ratio < 0.55, `size ratio ${ratio}`);
  });
}

test('fp16: a node reading a constant beyond ±65504 stays float32 (a clipped BN variance would rescale its output)', async () => {
  const b = new GraphBuilder('bn');
  const x = b.input('x', DataType.FLOAT, [2, 3, 4, 4]);
  const scale = b.constant('scale', DataType.FLOAT, [3], [1, 1, 1]);
  const bias = b.constant('bias', DataType.FLOAT, [3], [0, 0, 0]);
  const mean = b.constant('mean', DataType.FLOAT, [3], [0, 0, 0]);
  const variance = b.constant('var', DataType.FLOAT, [3], [1, 4e7, 1]); // beyond fp16's range
  const y = b.op('BatchNormalization', [b.op('Relu', [x]), scale, bias, mean, variance], undefined, { name: 'bn' });
  b.output(y, 'y', DataType.FLOAT, [2, 3, 4, 4]);
  const model = b.build();
  const reference = decodeModel(encodeModelToBytes(model));
  const r = await runPass(fp16Pass(), model);
  const stats = r.stats as unknown as Fp16Stats;
  assert.ok(JSON.stringify(stats.keptFloat32).includes('beyond float16'), JSON.stringify(stats.keptFloat32));
  const bn = r.model.graph.nodes.find((n) => n.name === 'bn')!;
  assert.equal(elemTypeOf(bn.inputs[4]!.type) ?? bn.inputs[4]!.initializer?.dtype, DataType.FLOAT, 'the variance stays float32');
  const feeds = randomFeeds(feedSpecsOf(reference), { seed: 2 });
  const [a, c] = [await createSession(reference), await createSession(r.model)];
  const ya = (await a.run(feeds)).y!.toArray() as Float32Array;
  const yc = (await c.run(feeds)).y!.toArray() as Float32Array;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ya.length; i++) {
    num = Math.max(num, Math.abs(ya[i]! - yc[i]!));
    den = Math.max(den, Math.abs(ya[i]!));
  }
  assert.ok(num / den < 1e-2, `relative error ${num / den}`);
  await a.release();
  await c.release();
});
