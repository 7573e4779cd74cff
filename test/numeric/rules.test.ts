/** The rewrite-rule framework (passes/rules.ts): dispatch by op, typed skip codes, untouched graphs on rejection. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node } from '../../src/ir/node.js';
import { addConstant, replaceNode } from '../../src/ir/rewrite.js';
import { elemTypeOf } from '../../src/ir/types.js';
import { decodeModel, encodeModelToBytes, loadModel } from '../../src/onnx/index.js';
import { StatsCollector } from '../../src/passes/exclusions.js';
import { runPass } from '../../src/passes/pass.js';
import { fp16Pass } from '../../src/passes/precision/fp16.js';
import { int4WeightOnlyPass } from '../../src/passes/quantize/int4.js';
import { int8DynamicPass } from '../../src/passes/quantize/int8-dynamic.js';
import { ANY_OP, applyRules, type RewriteRule, skip, SKIP_CODES } from '../../src/passes/rules.js';
import { createSession, feedSpecsOf, randomFeeds } from '../../src/runtime/index.js';

/** x → MatMul(w) → Neg → Relu → Neg → y, plus a custom-domain Neg that no default-domain rule may claim. */
function model() {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, ['n', 4]);
  const w = b.constant('w', DataType.FLOAT, [4, 4], Float32Array.from({ length: 16 }, (_, i) => Math.cos(i)));
  const h = b.op('Neg', [b.op('MatMul', [x, w], undefined, { name: 'mm' })], undefined, { name: 'neg1' });
  const r = b.op('Relu', [h], undefined, { name: 'relu' });
  b.output(b.op('Neg', [r], undefined, { name: 'neg2' }), 'y', DataType.FLOAT, ['n', 4]);
  const m = b.build();
  // A Neg in another domain, reading x, its output unused: only its (op, domain) pair differs.
  m.graph.addNode({ opType: 'Neg', domain: 'com.example', name: 'alien', inputs: [m.graph.inputs[0]!] });
  return m;
}

interface Ctx {
  visits: string[];
}

/** Neg(x) → Mul(x, −1): exact in float32. Records every node it is asked about. */
const negRule: RewriteRule<Ctx, { x: NonNullable<Node['inputs'][number]> }> = {
  ops: ['Neg', 'Mul'],
  check(node, ctx) {
    ctx.visits.push(node.name);
    if (node.opType === 'Mul') return skip('blocked', 'Mul is only counted');
    if (node.name === 'neg2') return skip('shape', 'neg2 refused (test)');
    return { x: node.inputs[0]! };
  },
  rewrite(node, { x }) {
    const g = node.graph!;
    const minusOne = addConstant(g, `${node.name}_minus_one`, DataType.FLOAT, [], Float32Array.of(-1));
    replaceNode(g, node, [{ opType: 'Mul', name: node.name, inputs: [x, minusOne] }]);
    return 'Mul by -1';
  },
};

/** Refuses every MatMul, with the weight's name. */
const refuseMatMul: RewriteRule<Ctx, never> = {
  ops: ['MatMul'],
  check: (node) => skip('not-constant', `weight '${node.inputs[1]!.name}' refused (test)`),
  rewrite: () => assert.fail('rewrite must not run after a refusal'),
};

test('applyRules: dispatches by op, rewrites, and records done and typed skips in the stats', async () => {
  const m = model();
  const before = encodeModelToBytes(m);
  const stats = new StatsCollector();
  const ctx: Ctx = { visits: [] };
  const r = applyRules(m.graph, [negRule, refuseMatMul], ctx, {
    exclude: (n) => (n.opType === 'Relu' ? skip('excluded', 'Relu excluded (test)') : undefined),
    report: stats,
  });
  // The inserted Mul is not visited; the custom-domain Neg and the unclaimed Relu are not dispatched.
  assert.deepEqual(ctx.visits, ['neg1', 'neg2']);
  assert.deepEqual(r, { rewritten: 1, skipped: 2 });
  const st = stats.finish('s8', 'test');
  assert.deepEqual(st.quantized, [{ node: 'neg1', opType: 'Neg', detail: 'Mul by -1' }]);
  assert.deepEqual(st.skipped, [
    { node: 'mm', opType: 'MatMul', detail: "weight 'w' refused (test)", code: 'not-constant' },
    { node: 'neg2', opType: 'Neg', detail: 'neg2 refused (test)', code: 'shape' },
  ]);
  assert.deepEqual(st.skippedByCode, { 'not-constant': 1, shape: 1 });
  assert.ok(SKIP_CODES.includes('excluded'));
  assert.deepEqual(
    m.graph.nodes.map((n) => `${n.domain ? n.domain + '::' : ''}${n.opType}`),
    ['MatMul', 'Mul', 'Relu', 'Neg', 'com.example::Neg'],
  );
  // The rewrite is exact: same outputs in ONNX Runtime (the custom-domain node is dropped for running).
  const run = async (bytes: Uint8Array): Promise<number[]> => {
    const mm = decodeModel(bytes);
    const alien = mm.graph.nodes.find((n) => n.domain === 'com.example')!;
    mm.graph.removeNode(alien);
    const s = await createSession(mm);
    const out = (await s.run(randomFeeds(feedSpecsOf(mm), { seed: 7, dims: { n: 3 } }))).y!.toArray() as Float32Array;
    await s.release();
    return Array.from(out);
  };
  assert.deepEqual(await run(encodeModelToBytes(m)), await run(before));
});

test('applyRules: an excluded node and a refused check leave the model byte-identical', () => {
  const m = model();
  const before = encodeModelToBytes(m);
  const stats = new StatsCollector();
  const ctx: Ctx = { visits: [] };
  const r = applyRules(m.graph, [negRule, refuseMatMul], ctx, {
    exclude: (n) => (n.name === 'neg1' ? skip('excluded', 'excluded by name') : undefined),
    report: stats,
  });
  assert.deepEqual(r, { rewritten: 0, skipped: 3 });
  assert.deepEqual(ctx.visits, ['neg2'], 'an excluded node never reaches check');
  assert.deepEqual(stats.skipped.map((s) => s.code), ['not-constant', 'excluded', 'shape']);
  assert.deepEqual(encodeModelToBytes(m), before);
});

test('applyRules: two rules claiming one op is an internal error', () => {
  const m = model();
  assert.throws(
    () => applyRules(m.graph, [negRule, { ...refuseMatMul, ops: ['Neg'] }], { visits: [] }, { report: new StatsCollector() }),
    (e: unknown) => isFrugalError(e) && e.code === 'E_INTERNAL' && /Neg/.test(e.message),
  );
});

test('applyRules: a rule for every op sees each node no named rule claims, of any domain; null means not reported', () => {
  const m = model();
  const before = encodeModelToBytes(m);
  const stats = new StatsCollector();
  const ctx: Ctx = { visits: [] };
  const everyOp: RewriteRule<Ctx, never> = {
    ops: ANY_OP,
    check(node, c) {
      c.visits.push(node.name);
      return node.opType === 'Relu' ? skip('blocked', 'Relu refused (test)') : null;
    },
    rewrite: () => assert.fail('no node matched'),
  };
  const r = applyRules(m.graph, [everyOp, refuseMatMul], ctx, { report: stats });
  // MatMul goes to its named rule; the custom-domain Neg reaches the rule for every op.
  assert.deepEqual(ctx.visits, ['neg1', 'relu', 'neg2', 'alien']);
  assert.deepEqual(r, { rewritten: 0, skipped: 2 });
  assert.deepEqual(stats.skipped.map((s) => [s.node, s.code]), [['mm', 'not-constant'], ['relu', 'blocked']]);
  assert.deepEqual(encodeModelToBytes(m), before);
  const internal = (e: unknown): boolean => isFrugalError(e) && e.code === 'E_INTERNAL';
  assert.throws(() => applyRules(m.graph, [everyOp, { ...everyOp }], ctx, { report: stats }), internal);
  assert.throws(() => applyRules(m.graph, [{ ...everyOp, domain: 'com.example' }], ctx, { report: stats }), internal);
});

/** x → MatMul(w) → Softmax → Exp → y: Exp is on fp16's block list (overflow-prone). */
function softmaxModel() {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, ['n', 4]);
  const w = b.constant('w', DataType.FLOAT, [4, 4], Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)));
  const s = b.op('Softmax', [b.op('MatMul', [x, w], undefined, { name: 'mm' })], { axis: -1 }, { name: 'softmax' });
  b.output(b.op('Exp', [s], undefined, { name: 'exp' }), 'y', DataType.FLOAT, ['n', 4]);
  return b.build();
}

test('fp16 through applyRules: a Softmax kept float32 reports its code in keptFloat32 and skippedByCode', async () => {
  const r = await runPass(fp16Pass({ blockOps: ['Softmax'] }), softmaxModel());
  const s = r.stats as { convertedNodes: number; keptFloat32: Record<string, { count: number; reason: string; code: string }>; skippedByCode: Record<string, number> };
  assert.deepEqual(s.keptFloat32, {
    Softmax: { count: 1, reason: 'blocked by option', code: 'excluded' },
    Exp: { count: 1, reason: 'overflow-prone in float16 (max 65504)', code: 'blocked' },
  });
  assert.deepEqual(s.skippedByCode, { excluded: 1, blocked: 1 });
  assert.equal(s.convertedNodes, 1, 'only the MatMul computes in float16');
  const byName = new Map(r.model.graph.nodes.map((n) => [n.name, n]));
  assert.equal(elemTypeOf(byName.get('mm')!.outputs[0]!.type), DataType.FLOAT16);
  assert.equal(byName.get('softmax')!.inputs[0]!.producer?.opType, 'Cast', 'a Cast back to float32 feeds the kept Softmax');
});

test('fp16 through applyRules: when every node is refused, the model comes out as it went in', async () => {
  const m = softmaxModel();
  const before = encodeModelToBytes(m);
  const r = await runPass(fp16Pass({ excludeNodes: ['mm', 'softmax', 'exp'] }), m);
  const s = r.stats as { convertedNodes: number; castsInserted: number; skippedByCode: Record<string, number> };
  assert.equal(r.modified, false);
  assert.deepEqual([s.convertedNodes, s.castsInserted], [0, 0]);
  assert.deepEqual(s.skippedByCode, { excluded: 3 });
  assert.deepEqual(encodeModelToBytes(r.model), before);
});

test('passes written as rules: every skipped node of int8-dynamic, int4 and fp16 carries a known code', async () => {
  const file = new URL('../../../models/spam-transformer.onnx', import.meta.url).pathname;
  const i8 = (await runPass(int8DynamicPass({ weightScheme: 's8-reduced', excludeOpTypes: ['Gather'] }), await loadModel(file))).stats as { skipped: Array<{ code?: string }>; skippedByCode: Record<string, number> };
  assert.ok(i8.skipped.length > 0);
  assert.ok(i8.skipped.every((s) => SKIP_CODES.includes(s.code as never)), JSON.stringify(i8.skipped));
  assert.equal(i8.skippedByCode['excluded'], 1);
  assert.equal(Object.values(i8.skippedByCode).reduce((a, b) => a + b, 0), i8.skipped.length);
  const i4 = (await runPass(int4WeightOnlyPass({ embeddings: false }), await loadModel(file))).stats as { skipped: Array<{ code: string }>; skippedByCode: Record<string, number> };
  assert.ok(i4.skipped.some((s) => s.code === 'disabled'), JSON.stringify(i4.skipped));
  assert.ok(i4.skipped.every((s) => SKIP_CODES.includes(s.code as never)), JSON.stringify(i4.skipped));
  assert.equal(i4.skippedByCode['disabled'], i4.skipped.filter((s) => s.code === 'disabled').length);
  assert.equal(Object.values(i4.skippedByCode).reduce((a, b) => a + b, 0), i4.skipped.length);
  const f16 = (await runPass(fp16Pass({ blockOps: ['Add'] }), await loadModel(file))).stats as { keptFloat32: Record<string, { count: number; code: string }>; skippedByCode: Record<string, number> };
  assert.equal(f16.keptFloat32['Add']?.code, 'excluded');
  assert.ok(Object.values(f16.keptFloat32).every((k) => SKIP_CODES.includes(k.code as never)), JSON.stringify(f16.keptFloat32));
  // skippedByCode counts every kept node (keptFloat32 shows the first one's code per op type).
  assert.ok(Object.keys(f16.skippedByCode).every((c) => SKIP_CODES.includes(c as never)), JSON.stringify(f16.skippedByCode));
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  assert.equal(sum(Object.values(f16.skippedByCode)), sum(Object.values(f16.keptFloat32).map((k) => k.count)));
});
