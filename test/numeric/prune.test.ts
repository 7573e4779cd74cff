/**
 * Pruning passes, proven in ONNX Runtime: structured pruning of channels/units/heads whose weights are
 * zero gives the unpruned model's outputs (exactness) on a graph with BatchNorm, a depthwise Conv, a
 * residual Add and Flatten→Gemm, on an MLP and on the zoo transformer's heads; blocked groups say why;
 * magnitude and N:M masks zero exactly what they promise and the checker reads the pattern back; the
 * Zhu & Gupta schedule; sparse storage loads in ORT with identical outputs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { ints } from '../../src/ir/node.js';
import { verify } from '../../src/ir/verify.js';
import { decodeModel, encodeModelToBytes } from '../../src/onnx/index.js';
import { runPass } from '../../src/passes/pass.js';
import {
  analyzeStructure, applyMasks, checkNMPattern, magnitudeMasks, magnitudePrunePass, nmMasks, nmPrunePass, parsePattern, polynomialSparsity,
  readFloats, sparsityReport, structuredPrunePass, toSparseStorage, writeFloats,
} from '../../src/passes/prune/index.js';
import { createSession, feedSpecsOf, randomFeeds } from '../../src/runtime/index.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { buildZooModel } from '../../src/zoo/index.js';
import { costOf } from '../../src/training/prune-recipe.js';

const clone = (m: Model): Model => decodeModel(encodeModelToBytes(m));

async function outputs(m: Model, dims: Record<string, number> = {}): Promise<Record<string, Tensor>> {
  const s = await createSession(m, { intraOpThreads: 1 });
  try {
    return await s.run(randomFeeds(feedSpecsOf(m), { seed: 7, dims }));
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.toArray() as Float32Array;
  const y = b.toArray() as Float32Array;
  assert.equal(x.length, y.length);
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  return d;
}

let seed = 1;
function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    a[i] = (seed / 2 ** 32 - 0.5) * 0.8;
  }
  return a;
}

/** x → Conv(3→8) → BN → Relu → depthwise Conv(8) → Add(residual) → Conv1×1(8→6) → Relu → Flatten → Gemm(384→5). */
function convNet(): Model {
  const b = new GraphBuilder();
  const x = b.input('x', DataType.FLOAT, ['batch', 3, 8, 8]);
  const c = (name: string, dims: number[]) => b.constant(name, DataType.FLOAT, dims, rand(dims.reduce((p, q) => p * q, 1)));
  const conv1 = b.op('Conv', [x, c('w1', [8, 3, 3, 3]), c('b1', [8])], { pads: ints([1, 1, 1, 1]) }, { name: 'conv1' });
  const pos = (name: string) => b.constant(name, DataType.FLOAT, [8], Float32Array.from(rand(8), (v) => Math.abs(v) + 0.5));
  const bn = b.op('BatchNormalization', [conv1, pos('bn.scale'), c('bn.bias', [8]), c('bn.mean', [8]), pos('bn.var')], undefined, { name: 'bn' });
  const r = b.op('Relu', [bn]);
  const dw = b.op('Conv', [r, c('wdw', [8, 1, 3, 3]), c('bdw', [8])], { pads: ints([1, 1, 1, 1]), group: 8 }, { name: 'dw' });
  const add = b.op('Add', [dw, r], undefined, { name: 'residual' });
  const conv2 = b.op('Conv', [add, c('w2', [6, 8, 1, 1]), c('b2', [6])], undefined, { name: 'conv2' });
  const f = b.op('Flatten', [b.op('Relu', [conv2])], { axis: 1 });
  const y = b.op('Gemm', [f, c('wf', [5, 384]), c('bf', [5])], { transB: 1 }, { name: 'fc' });
  b.output(y, 'y', DataType.FLOAT, ['batch', 5]);
  return b.build();
}

/** Zeros channel c of every weight slice (filters that make it and weights that read it) of a group. */
function zeroChannels(m: Model, groupSeed: string, channels: number[]): void {
  const g = analyzeStructure(m).groups.find((x) => x.seed.name === groupSeed)!;
  assert.ok(g, `group ${groupSeed}`);
  for (const s of g.slices) {
    if (s.role === 'param') continue;
    const data = Float32Array.from(readFloats(s.value));
    const dims = s.value.initializer!.dims;
    const inner = dims.slice(s.axis + 1).reduce((p, q) => p * q, 1);
    for (let i = 0; i < data.length; i++) {
      const at = (Math.floor(i / inner) % dims[s.axis]!) - s.offset;
      if (at >= 0 && at < g.channels * s.block && channels.includes(Math.floor(at / s.block))) data[i] = 0;
    }
    writeFloats(s.value, data);
  }
}

describe('structured pruning', () => {
  test('the dependency analysis couples BN, depthwise Conv, the residual Add and Flatten→Gemm', () => {
    const { groups, blocked } = analyzeStructure(convNet());
    const g8 = groups.find((g) => g.seed.name === 'conv1')!;
    assert.equal(g8.channels, 8);
    const sliced = g8.slices.map((s) => `${s.value.name}@${s.axis}`).sort();
    assert.deepEqual(sliced, ['b1@0', 'bdw@0', 'bn.bias@0', 'bn.mean@0', 'bn.scale@0', 'bn.var@0', 'w1@0', 'w2@1', 'wdw@0'].sort());
    assert.deepEqual(g8.depthwise.map((n) => n.name), ['dw']);
    const g6 = groups.find((g) => g.seed.name === 'conv2')!;
    assert.ok(g6.slices.some((s) => s.value.name === 'wf' && s.axis === 1 && s.block === 64), 'Flatten makes each channel a block of 8×8 Gemm inputs');
    assert.deepEqual(blocked.map((b) => b.node), ['fc']);
    assert.match(blocked[0]!.reason, /graph output/);
  });

  test('pruning zeroed channels gives identical ORT outputs, with fewer parameters and FLOPs', async () => {
    const m = convNet();
    zeroChannels(m, 'conv1', [1, 4, 6]);
    zeroChannels(m, 'conv2', [0, 5]);
    const ref = await outputs(m, { batch: 2 });
    const before = costOf(m, { batch: 1 });
    const r = await runPass(structuredPrunePass({ ratio: 0.34 }), clone(m));
    verify(r.model);
    assert.deepEqual((r.stats.groups as any[]).map((g) => `${g.node}:${g.before}->${g.after}`), ['conv1:8->6', 'conv2:6->4']);
    assert.equal(r.model.graph.nodes.find((n) => n.name === 'dw')!.attrInt('group', 0), 6);
    const got = await outputs(r.model, { batch: 2 });
    assert.ok(maxAbsDiff(got.y!, ref.y!) <= 1e-6, `max diff ${maxAbsDiff(got.y!, ref.y!)}`);
    const after = costOf(r.model, { batch: 1 });
    assert.ok(after.parameterCount < before.parameterCount && after.flops! < before.flops!);
  });

  test('Concat: each input keeps its channel range; zeroed channels of both removed exactly', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', DataType.FLOAT, ['batch', 3, 6, 6]);
    const c = (name: string, dims: number[]) => b.constant(name, DataType.FLOAT, dims, rand(dims.reduce((p, q) => p * q, 1)));
    const a = b.op('Relu', [b.op('Conv', [x, c('wa', [4, 3, 1, 1]), c('ba', [4])], undefined, { name: 'convA' })]);
    const bb = b.op('Relu', [b.op('Conv', [x, c('wb', [6, 3, 3, 3]), c('bb', [6])], { pads: ints([1, 1, 1, 1]) }, { name: 'convB' })]);
    const cat = b.op('Concat', [a, bb], { axis: 1 });
    const z = b.op('Conv', [cat, c('wc', [5, 10, 1, 1])], undefined, { name: 'convC' });
    b.output(b.op('Gemm', [b.op('Flatten', [z], { axis: 1 }), c('wf', [2, 180])], { transB: 1 }), 'y', DataType.FLOAT, ['batch', 2]);
    const m = b.build();
    const groups = analyzeStructure(m).groups;
    const gb = groups.find((g) => g.seed.name === 'convB')!;
    assert.ok(gb.slices.some((s) => s.value.name === 'wc' && s.axis === 1 && s.offset === 4), 'convB channels sit at offset 4 of the concat');
    zeroChannels(m, 'convA', [1]);
    zeroChannels(m, 'convB', [2, 4]);
    const ref = await outputs(m, { batch: 2 });
    const r = await runPass(structuredPrunePass({ ratio: 0.34, exclude: ['convC'] }), clone(m));
    assert.deepEqual((r.stats.groups as any[]).map((g) => `${g.node}:${g.before}->${g.after}`), ['convA:4->3', 'convB:6->4']);
    assert.deepEqual(r.model.graph.values.get('wc')!.initializer!.dims, [5, 7, 1, 1]);
    const got = await outputs(r.model, { batch: 2 });
    assert.ok(maxAbsDiff(got.y!, ref.y!) <= 1e-5, `max diff ${maxAbsDiff(got.y!, ref.y!)}`);
  });

  test('MLP hidden units: zeroed units removed exactly (MatMul + Add bias + Relu chain)', async () => {
    const m = buildZooModel('mlp');
    const first = analyzeStructure(m).groups[0]!;
    zeroChannels(m, first.seed.name, [0, 3, 100, 255]);
    const ref = await outputs(m, { batch: 4 });
    const r = await runPass(structuredPrunePass({ ratio: 4 / 256 + 1e-6, target: 'channels', exclude: ['fc2.matmul'] }), clone(m));
    const g = (r.stats.groups as any[])[0];
    assert.equal(`${g.before}->${g.after}`, '256->252');
    const got = await outputs(r.model, { batch: 4 });
    const name = m.graph.outputs[0]!.name;
    assert.ok(maxAbsDiff(got[name]!, ref[name]!) <= 1e-5, `max diff ${maxAbsDiff(got[name]!, ref[name]!)}`);
  });

  test('attention heads: zeroed heads removed exactly from the zoo transformer', async () => {
    const m = buildZooModel('transformer-tiny');
    const heads = analyzeStructure(m, 'heads').groups;
    assert.equal(heads.length, 2);
    assert.equal(heads[0]!.channels, 4);
    zeroChannels(m, heads[0]!.seed.name, [2]);
    zeroChannels(m, heads[1]!.seed.name, [0]);
    const dims = { batch: 2, seq: 12 };
    const ref = await outputs(m, dims);
    const r = await runPass(structuredPrunePass({ ratio: 0.25, target: 'heads' }), clone(m));
    assert.deepEqual((r.stats.groups as any[]).map((g) => `${g.kind}:${g.before}->${g.after}`), ['heads:4->3', 'heads:4->3']);
    const got = await outputs(r.model, dims);
    assert.ok(maxAbsDiff(got.logits!, ref.logits!) <= 1e-5, `max diff ${maxAbsDiff(got.logits!, ref.logits!)}`);
  });

  test('heads + FFN neurons of the spam teacher: about half the FLOPs, runs in ORT', async () => {
    const { loadModel } = await import('../../src/onnx/index.js');
    const m = await loadModel('models/spam-transformer.onnx');
    const dims = { batch: 1, seq: 128 };
    const before = costOf(m, dims);
    const r = await runPass(structuredPrunePass({ ratio: 0.5 }), m);
    const kinds = (r.stats.groups as any[]).map((g) => g.kind);
    assert.ok(kinds.includes('heads') && kinds.includes('channels'));
    const after = costOf(r.model, dims);
    assert.ok(before.flops! / after.flops! > 1.9, `FLOPs ratio ${before.flops! / after.flops!}`);
    await outputs(r.model, { batch: 2, seq: 16 });
  });

  test('nothing prunable and ratios that remove everything are clear errors', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', DataType.FLOAT, [1, 4]);
    b.output(b.op('MatMul', [x, b.constant('w', DataType.FLOAT, [4, 3], rand(12))]), 'y', DataType.FLOAT, [1, 3]);
    await assert.rejects(runPass(structuredPrunePass({ ratio: 0.5 }), b.build()), (e) => isFrugalError(e, 'E_UNSUPPORTED') && /nothing structurally prunable.*graph output/.test(e.message));
    assert.throws(() => structuredPrunePass({ ratio: 1 }), (e) => isFrugalError(e, 'E_USAGE') && /--ratio/.test(e.message));
  });
});

describe('unstructured pruning', () => {
  test('per-layer magnitude zeros round(s·n) of every weight, smallest first, and runs in ORT', async () => {
    const m = buildZooModel('cnn');
    const orig = new Map(m.graph.initializers().map((v) => [v.name, Float32Array.from(readFloats(v))]));
    const r = await runPass(magnitudePrunePass({ sparsity: 0.7 }), m);
    for (const l of sparsityReport(r.model).layers) {
      assert.equal(l.zeros, Math.round(0.7 * l.params), l.tensor);
      const w = readFloats(r.model.graph.values.get(l.tensor)!);
      const o = orig.get(l.tensor)!;
      let maxPruned = 0;
      let minKept = Infinity;
      for (let i = 0; i < w.length; i++) w[i] === 0 ? (maxPruned = Math.max(maxPruned, Math.abs(o[i]!))) : (minKept = Math.min(minKept, Math.abs(o[i]!)));
      assert.ok(maxPruned <= minKept, `${l.tensor}: a pruned weight is larger than a kept one`);
    }
    await outputs(r.model, { batch: 2 });
  });

  test('global magnitude: one threshold, total sparsity exact', () => {
    const m = buildZooModel('mlp');
    applyMasks(m, magnitudeMasks(m, { sparsity: 0.9, scope: 'global' }));
    const rep = sparsityReport(m);
    assert.ok(Math.abs(rep.sparsity - 0.9) < 1e-5);
    assert.ok(new Set(rep.layers.map((l) => l.sparsity.toFixed(2))).size > 1, 'layers differ under one threshold');
  });

  test('N:M: every group of M along the reduction axis keeps N; the checker reads the pattern', async () => {
    const m = buildZooModel('mlp');
    assert.throws(() => checkNMPattern(m, 2, 4), /breaks 2:4/);
    const r = await runPass(nmPrunePass({ n: 2, m: 4 }), m);
    checkNMPattern(r.model, 2, 4);
    const rep = sparsityReport(r.model);
    assert.ok(rep.patterns.includes('2:4'));
    assert.ok(Math.abs(rep.sparsity - 0.5) < 1e-9);
    const one8 = nmMasks(buildZooModel('mlp'), { n: 1, m: 8 });
    const m2 = buildZooModel('mlp');
    applyMasks(m2, one8.masks);
    assert.deepEqual(sparsityReport(m2).patterns, ['1:4', '1:8', '2:16'], 'groups of 4 inside 1:8 groups hold at most one nonzero');
    assert.throws(() => parsePattern('4:4'), (e) => isFrugalError(e, 'E_USAGE') && /0 < N < M/.test(e.message));
    assert.throws(() => parsePattern('2-4'), /N:M/);
  });

  test('embedding tables are left alone unless asked', async () => {
    const m = buildZooModel('transformer-tiny');
    const table = 'embeddings.word_embeddings.weight';
    assert.ok(!magnitudeMasks(m, { sparsity: 0.5 }).has(table));
    const r = await runPass(magnitudePrunePass({ sparsity: 0.5, embeddings: true }), m);
    const rep = sparsityReport(r.model, { embeddings: true });
    assert.equal(rep.layers.find((l) => l.tensor === table)!.sparsity, 0.5);
    assert.ok(!rep.layers.some((l) => /layer_norm|bias|position/.test(l.tensor)), 'norms, biases and Slice-read tables stay out');
    await outputs(r.model, { batch: 2, seq: 8 });
  });

  test('sparsity outside [0, 1) is rejected', () => {
    for (const s of [1, -0.1, 1.5, NaN]) assert.throws(() => magnitudePrunePass({ sparsity: s }), (e) => isFrugalError(e, 'E_USAGE') && /--sparsity/.test(e.message));
  });

  test('Zhu & Gupta schedule: cubic from the initial to the final sparsity', () => {
    const s = { final: 0.9, endStep: 100 };
    assert.equal(polynomialSparsity(0, s), 0);
    assert.equal(polynomialSparsity(100, s), 0.9);
    assert.equal(polynomialSparsity(500, s), 0.9);
    assert.ok(Math.abs(polynomialSparsity(50, s) - 0.9 * (1 - 0.125)) < 1e-12);
    for (let t = 1; t <= 100; t++) assert.ok(polynomialSparsity(t, s) >= polynomialSparsity(t - 1, s));
  });

  test('sparse storage: smaller file, ORT densifies it with identical outputs', async () => {
    const m = buildZooModel('mlp');
    applyMasks(m, magnitudeMasks(m, { sparsity: 0.9 }));
    const dense = encodeModelToBytes(m).byteLength;
    const ref = await outputs(m, { batch: 3 });
    const stats = await toSparseStorage(m);
    assert.ok(stats.converted.length >= 2);
    const bytes = encodeModelToBytes(m);
    assert.ok(bytes.byteLength < dense * 0.5, `${bytes.byteLength} vs ${dense}`);
    const reread = decodeModel(bytes);
    assert.ok(reread.graph.sparseInitializerNames.length >= 2);
    const got = await outputs(reread, { batch: 3 });
    const name = m.graph.outputs[0]!.name;
    assert.equal(maxAbsDiff(got[name]!, ref[name]!), 0);
  });
});
