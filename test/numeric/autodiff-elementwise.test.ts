/**
 * Gradient rules of the elementwise, activation and Gemm families (rules/elementwise.ts,
 * activations.ts, gemm.ts) and MatMul's 1-D operands, each checked against central finite differences
 * through ORT (helpers/gradcheck.ts states the tolerances). float64 wherever ORT's CPU provider has
 * float64 kernels for the op and for every op its rule emits; Erf, LeakyRelu and the erf form of Gelu
 * have float32 kernels only and use the looser float32 tolerance. Dropout in training mode is random,
 * so its gradient is checked against the mask ORT returns instead of finite differences.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { float, type Value } from '../../src/ir/node.js';
import { decodeModel, encodeModelToBytes } from '../../src/onnx/index.js';
import { float16BitsToFloat32Array, float32ToFloat16Bits } from '../../src/onnx/packing.js';
import { differentiate } from '../../src/training/autodiff/engine.js';
import { createRng } from '../../src/util/rng.js';
import { type GradCheckOptions, gradCheck } from '../helpers/gradcheck.js';

/** Runs a gradient check and reports how many elements it compared and the largest error. */
async function check(t: TestContext, opts: GradCheckOptions): Promise<void> {
  const r = await gradCheck(opts);
  assert.ok(r.checked > 0, 'compared at least one element');
  t.diagnostic(`checked ${r.checked} elements, max |analytic − numeric| = ${r.maxAbsError.toExponential(2)} (${opts.dtype ?? 'float64'})`);
}

/** Seeded values with |v| in [lo, lo + 1): kept away from 0 (and kinks, poles) by `lo`. */
function away(count: number, seed: number, lo = 0.3): number[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => (rng.next() < 0.5 ? -1 : 1) * (lo + rng.next()));
}

/** Seeded positive values in [lo, lo + 1.5). */
function positive(count: number, seed: number, lo = 0.3): number[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => lo + 1.5 * rng.next());
}

describe('elementwise arithmetic', () => {
  test('Div with broadcasting (both operands)', async (t) => {
    await check(t, { inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [3, 1], data: away(3, 2) }], build: (b, [x, y]) => b.op('Div', [x!, y!]) });
    await check(t, { inputs: [{ name: 'a', shape: [4], data: away(4, 3) }, { name: 'b', shape: [2, 4], data: away(8, 4) }], build: (b, [x, y]) => b.op('Div', [x!, y!]) });
  });

  test('Neg', async (t) => {
    await check(t, { inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Neg', [x!]) });
  });

  test('Pow: base and exponent, broadcasting', async (t) => {
    await check(t, { inputs: [{ name: 'a', shape: [2, 3], data: positive(6, 5) }, { name: 'p', shape: [3] }], build: (b, [x, p]) => b.op('Pow', [x!, p!]) });
    // Negative bases with an integer-valued constant exponent: only the base is differentiated.
    await check(t, {
      inputs: [{ name: 'a', shape: [2, 3] }],
      build: (b, [x]) => b.op('Pow', [x!, b.constant('three', DataType.DOUBLE, [], [3])]),
    });
    // An int64 exponent (opset 13+ allows T1 ≠ T): cast to the base's type.
    await check(t, {
      inputs: [{ name: 'a', shape: [2, 3] }, { name: 'p', shape: [3], elemType: DataType.INT64, data: [2, 3, 1] }],
      build: (b, [x, p]) => b.op('Pow', [x!, p!]),
    });
  });

  test('Sqrt, Exp, Log, Reciprocal', async (t) => {
    const pos = [{ name: 'x', shape: [3, 4], data: positive(12, 6) }];
    await check(t, { inputs: pos, build: (b, [x]) => b.op('Sqrt', [x!]) });
    await check(t, { inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Exp', [x!]) });
    await check(t, { inputs: pos, build: (b, [x]) => b.op('Log', [x!]) });
    await check(t, { inputs: [{ name: 'x', shape: [3, 4], data: away(12, 7, 0.5) }], build: (b, [x]) => b.op('Reciprocal', [x!]) });
  });

  test('Abs (away from the kink)', async (t) => {
    await check(t, { inputs: [{ name: 'x', shape: [3, 4], data: away(12, 8) }], build: (b, [x]) => b.op('Abs', [x!]) });
  });

  test('Erf (float32: ORT has no float64 Erf kernel)', async (t) => {
    await check(t, { dtype: 'float32', inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Erf', [x!]) });
  });

  test('Sum: variadic with broadcasting', async (t) => {
    await check(t, {
      inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [4] }, { name: 'c', shape: [3, 1] }],
      build: (b, [x, y, z]) => b.op('Sum', [x!, y!, z!]),
    });
  });

  test('Max and Min: binary with broadcasting, and variadic', async (t) => {
    const ins = [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [3, 1] }];
    await check(t, { inputs: ins, build: (b, [x, y]) => b.op('Max', [x!, y!]) });
    await check(t, { inputs: ins, build: (b, [x, y]) => b.op('Min', [x!, y!]) });
    const three = [{ name: 'a', shape: [3, 4] }, { name: 'b', shape: [4] }, { name: 'c', shape: [3, 4] }];
    await check(t, { inputs: three, build: (b, [x, y, z]) => b.op('Max', [x!, y!, z!]) });
    await check(t, { inputs: three, build: (b, [x, y, z]) => b.op('Min', [x!, y!, z!]) });
  });

  test('Max and Min at ties: the gradient goes to one operand, not to each (d max(x, x)/dx = 1)', async (t) => {
    const one = [{ name: 'x', shape: [3, 4] }];
    await check(t, { inputs: one, build: (b, [x]) => b.op('Max', [x!, x!]) });
    await check(t, { inputs: one, build: (b, [x]) => b.op('Min', [x!, x!, x!]) });
  });

  test('Where with a fixed condition, X and Y broadcast', async (t) => {
    const cond = createRng(9);
    await check(t, {
      inputs: [
        { name: 'c', shape: [2, 3], elemType: DataType.BOOL, data: Array.from({ length: 6 }, () => cond.int(2)) },
        { name: 'x', shape: [2, 3] },
        { name: 'y', shape: [3] },
      ],
      build: (b, [c, x, y]) => b.op('Where', [c!, x!, y!]),
    });
  });

  test('Clip: constant bounds, differentiable bounds, and min only', async (t) => {
    await check(t, {
      inputs: [{ name: 'x', shape: [3, 4] }],
      build: (b, [x]) => b.op('Clip', [x!, b.constant('lo', DataType.DOUBLE, [], [-0.5]), b.constant('hi', DataType.DOUBLE, [], [0.7])]),
    });
    await check(t, {
      inputs: [{ name: 'x', shape: [3, 4] }, { name: 'lo', shape: [], data: [-0.4] }, { name: 'hi', shape: [], data: [0.6] }],
      build: (b, [x, lo, hi]) => b.op('Clip', [x!, lo!, hi!]),
    });
    await check(t, { inputs: [{ name: 'x', shape: [3, 4] }, { name: 'lo', shape: [], data: [0.1] }], build: (b, [x, lo]) => b.op('Clip', [x!, lo!]) });
  });

  test('Cast float32 → float64 → float32, and no gradient through an integer cast', async (t) => {
    await check(t, {
      dtype: 'float32',
      inputs: [{ name: 'x', shape: [3, 4] }],
      build: (b, [x]) => b.op('Exp', [b.op('Cast', [x!], { to: DataType.DOUBLE })]),
    });
    // x + float(int(x)): the integer path is flat, so d/dx = 1 (data kept off integer boundaries).
    await check(t, {
      inputs: [{ name: 'x', shape: [6], data: [0.5, -1.4, 2.3, -0.6, 1.5, 3.7] }],
      build: (b, [x]) => b.op('Add', [x!, b.op('Cast', [b.op('Cast', [x!], { to: DataType.INT64 })], { to: DataType.DOUBLE })]),
    });
  });
});

describe('activations', () => {
  test('LeakyRelu (float32: no float64 kernel)', async (t) => {
    await check(t, { dtype: 'float32', inputs: [{ name: 'x', shape: [3, 4], data: away(12, 10) }], build: (b, [x]) => b.op('LeakyRelu', [x!], { alpha: float(0.2) }) });
  });

  test('Gelu, erf form (float32: ORT expands it to Erf) and tanh form (float64)', async (t) => {
    await check(t, { dtype: 'float32', opset: 20, inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Gelu', [x!]) });
    await check(t, { opset: 20, inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Gelu', [x!], { approximate: 'tanh' }) });
  });

  test('Sigmoid and Tanh', async (t) => {
    await check(t, { inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Sigmoid', [x!]) });
    await check(t, { inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Tanh', [x!]) });
  });

  test('Softmax and LogSoftmax: default axis and a non-last axis', async (t) => {
    const ins = [{ name: 'x', shape: [2, 3, 4] }];
    await check(t, { inputs: ins, build: (b, [x]) => b.op('Softmax', [x!]) });
    await check(t, { inputs: ins, build: (b, [x]) => b.op('Softmax', [x!], { axis: 1 }) });
    await check(t, { inputs: ins, build: (b, [x]) => b.op('LogSoftmax', [x!]) });
    await check(t, { inputs: ins, build: (b, [x]) => b.op('LogSoftmax', [x!], { axis: -3 }) });
  });

  test('Dropout in eval mode is the identity', async (t) => {
    await check(t, { inputs: [{ name: 'x', shape: [3, 4] }], build: (b, [x]) => b.op('Dropout', [x!]) });
    await check(t, {
      inputs: [{ name: 'x', shape: [3, 4] }],
      build: (b, [x]) => b.op('Dropout', [x!, b.constant('r', DataType.FLOAT, [], [0.4]), b.constant('tm', DataType.BOOL, [], [0])]),
    });
  });
});

/**
 * Dropout in training mode: loss = Σ Y ⊙ R, so dX must be R ⊙ mask / (1 − ratio) with the mask ORT
 * drew in the same run (fetched from the node's mask output, which the rule adds when absent).
 */
describe('Dropout in training mode', () => {
  const shape = [6, 7];
  const count = 42;
  const rData = Float32Array.from(away(count, 11));

  async function run(opts: { ratio?: number | 'input'; mode: 'const' | 'input'; declareMask: boolean; feedRatio?: number; feedMode?: boolean }) {
    const b = new GraphBuilder('dropout');
    const x = b.input('x', DataType.FLOAT, shape);
    const ratio = opts.ratio === 'input' ? b.input('ratio', DataType.FLOAT, []) : opts.ratio !== undefined ? b.constant('ratio', DataType.FLOAT, [], [opts.ratio]) : null;
    const mode = opts.mode === 'input' ? b.input('training_mode', DataType.BOOL, []) : b.constant('training_mode', DataType.BOOL, [], [1]);
    const outs = b.ops('Dropout', [x, ratio, mode], opts.declareMask ? 2 : 1, { seed: 7 });
    const r = b.constant('R', DataType.FLOAT, shape, rData);
    b.output(b.op('ReduceSum', [b.op('Mul', [outs[0]!, r])], { keepdims: 0 }), 'loss', DataType.FLOAT, []);
    const m = b.build({ opsetImports: { '': 17 } });
    const { grads } = differentiate(m, { loss: m.graph.outputs[0]!, wrt: [m.graph.inputs[0]!] });
    const dropout = m.graph.nodes.find((n) => n.opType === 'Dropout')!;
    const mask = dropout.outputs[1];
    assert.ok(mask, 'the Dropout node outputs its mask');
    m.graph.outputs.push(grads[0]!, mask);
    const s = await ort.InferenceSession.create(encodeModelToBytes(m), { logSeverityLevel: 3 });
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', Float32Array.from(away(count, 12, 0.5)), shape) };
    if (opts.ratio === 'input') feeds.ratio = new ort.Tensor('float32', Float32Array.from([opts.feedRatio!]), []);
    if (opts.mode === 'input') feeds.training_mode = new ort.Tensor('bool', Uint8Array.from([opts.feedMode ? 1 : 0]), []);
    const res = await s.run(feeds);
    await s.release();
    return { grad: res[grads[0]!.name]!.data as Float32Array, mask: res[mask.name]!.data as Uint8Array };
  }

  function expectScaled(t: TestContext, grad: Float32Array, mask: Uint8Array, ratio: number): void {
    let maxErr = 0;
    for (let i = 0; i < count; i++) {
      const want = mask[i] ? rData[i]! / (1 - ratio) : 0;
      maxErr = Math.max(maxErr, Math.abs(grad[i]! - want));
    }
    assert.ok(maxErr <= 1e-5, `dX = dY · mask / (1 − ratio), max error ${maxErr}`);
    t.diagnostic(`max |dX − dY·mask/(1−ratio)| = ${maxErr.toExponential(2)}; ${mask.reduce((a, v) => a + v, 0)}/${count} kept`);
  }

  test('constant ratio, mask added to the node by the rule', async (t) => {
    const { grad, mask } = await run({ ratio: 0.3, mode: 'const', declareMask: false });
    const kept = mask.reduce((a, v) => a + v, 0);
    assert.ok(kept > 0 && kept < count, 'some elements dropped, some kept');
    expectScaled(t, grad, mask, 0.3);
  });

  test('default ratio 0.5 with a declared mask output', async (t) => {
    const { grad, mask } = await run({ mode: 'const', declareMask: true });
    expectScaled(t, grad, mask, 0.5);
  });

  test('ratio and training_mode fed at run time', async (t) => {
    const on = await run({ ratio: 'input', mode: 'input', declareMask: false, feedRatio: 0.25, feedMode: true });
    expectScaled(t, on.grad, on.mask, 0.25);
    const off = await run({ ratio: 'input', mode: 'input', declareMask: false, feedRatio: 0.25, feedMode: false });
    assert.ok(off.mask.every((v) => v === 1), 'eval mode keeps everything');
    expectScaled(t, off.grad, off.mask, 0);
  });
});

describe('Gemm', () => {
  const cases: Array<{ transA: number; transB: number; c: number[] | null }> = [
    { transA: 0, transB: 0, c: [4] },
    { transA: 1, transB: 0, c: [3, 1] },
    { transA: 0, transB: 1, c: [] },
    { transA: 1, transB: 1, c: [3, 4] },
    { transA: 1, transB: 1, c: null },
  ];
  for (const { transA, transB, c } of cases) {
    test(`transA=${transA} transB=${transB} alpha=0.7 beta=1.3, C ${c ? JSON.stringify(c) : 'absent'}`, async (t) => {
      const [m, k, n] = [3, 5, 4];
      const inputs = [
        { name: 'a', shape: transA ? [k, m] : [m, k] },
        { name: 'b', shape: transB ? [n, k] : [k, n] },
        ...(c ? [{ name: 'c', shape: c }] : []),
      ];
      await check(t, { inputs, build: (b, [x, y, z]) => b.op('Gemm', z ? [x!, y!, z] : [x!, y!], { transA, transB, alpha: float(0.7), beta: float(1.3) }) });
    });
  }
});

/** Builds `build`, differentiates with respect to the named inputs only, and returns the backward nodes. */
function backwardOf(inputs: Array<{ name: string; shape: number[] }>, wrt: string[], build: (b: GraphBuilder, xs: Value[]) => Value) {
  const b = new GraphBuilder('g');
  const xs = inputs.map((i) => b.input(i.name, DataType.DOUBLE, i.shape));
  b.output(b.op('ReduceSum', [build(b, xs)], { keepdims: 0 }), 'loss', DataType.DOUBLE, []);
  const m = b.build({ opsetImports: { '': 17 } });
  const before = m.graph.nodes.length;
  differentiate(m, { loss: m.graph.outputs[0]!, wrt: wrt.map((w) => m.graph.values.get(w)!) });
  const backward = m.graph.nodes.slice(before);
  const reads = (name: string) => backward.filter((n) => n.inputs.some((v) => v?.name === name)).map((n) => n.opType);
  return { backward, ops: backward.map((n) => n.opType), reads };
}

describe('no gradient work for inputs that need none', () => {
  test('Div: only dA (no −dY·Y/B path), only dB (no dY/B path)', () => {
    const ins = [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 3] }];
    const onlyA = backwardOf(ins, ['a'], (b, [x, y]) => b.op('Div', [x!, y!]));
    assert.deepEqual(onlyA.ops.filter((o) => o === 'Div' || o === 'Neg' || o === 'Mul'), ['Div'], 'dA = dY / B and nothing of dB');
    const onlyB = backwardOf(ins, ['b'], (b, [x, y]) => b.op('Div', [x!, y!]));
    assert.deepEqual(onlyB.reads('a'), [], 'dB never reads A');
    assert.equal(onlyB.ops.filter((o) => o === 'Neg').length, 1);
  });

  test('Gemm: only dB emits one Gemm and never touches C; only dC emits no Gemm', () => {
    const ins = [{ name: 'a', shape: [3, 5] }, { name: 'b', shape: [5, 4] }, { name: 'c', shape: [4] }];
    const gemm = (b: GraphBuilder, [x, y, z]: Value[]) => b.op('Gemm', [x!, y!, z!], { beta: float(0.5) });
    const onlyB = backwardOf(ins, ['b'], gemm);
    assert.equal(onlyB.ops.filter((o) => o === 'Gemm').length, 1);
    assert.deepEqual(onlyB.reads('c'), [], 'nothing reads C');
    assert.ok(!onlyB.ops.includes('Mul'), 'no beta scaling for C');
    const onlyC = backwardOf(ins, ['c'], gemm);
    assert.ok(!onlyC.ops.includes('Gemm'), 'no operand products');
    assert.deepEqual(onlyC.reads('a'), []);
    assert.deepEqual(onlyC.reads('b'), []);
  });

  test('Pow, Where, Max, Clip: untouched operands get nothing', () => {
    const two = [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 3] }];
    const pow = backwardOf(two, ['a'], (b, [x, y]) => b.op('Pow', [x!, y!]));
    assert.ok(!pow.ops.includes('Log'), 'no exponent gradient');
    const max = backwardOf(two, ['b'], (b, [x, y]) => b.op('Max', [x!, y!]));
    assert.equal(max.ops.filter((o) => o === 'Where').length, 1, 'one Where, for B only');
    const where = backwardOf(two, ['b'], (b, [x, y]) => b.op('Where', [b.op('Greater', [x!, y!]), x!, y!]));
    assert.equal(where.ops.filter((o) => o === 'Where').length, 1, 'only the Y branch of Where');
    const clip = backwardOf([{ name: 'x', shape: [2, 3] }, { name: 'lo', shape: [] }, { name: 'hi', shape: [] }], ['x'], (b, [x, lo, hi]) => b.op('Clip', [x!, lo!, hi!]));
    assert.ok(!clip.ops.includes('Less') && !clip.ops.includes('Greater'), 'no bound gradients');
  });
});

/**
 * float16: ORT's CPU provider runs these ops in half precision, so the rules (constants made in the
 * forward type) must too. The half gradient is compared with the float32 one; half has an 11-bit
 * significand, so agreement within 2e-2 (relative to the gradient's scale) is what can be asked.
 */
describe('float16', () => {
  test('Div, Pow, Sigmoid, Gelu, Softmax, Where, Clip, Gemm graph matches its float32 twin', async (t) => {
    const [m, k, n] = [3, 4, 5];
    async function grads(elemType: number): Promise<Float32Array[]> {
      const b = new GraphBuilder('g');
      const x = b.input('x', elemType, [m, k]);
      const w = b.input('w', elemType, [k, n]);
      const half = elemType === DataType.FLOAT16;
      const c = (name: string, dims: number[], v: number[]) => b.constant(name, elemType, dims, half ? float32ToFloat16Bits(v) : Float32Array.from(v));
      const h = b.op('Gemm', [x, w, c('bias', [n], away(n, 20))], { alpha: float(0.5) });
      const g = b.op('Gelu', [b.op('Div', [h, b.op('Add', [b.op('Sigmoid', [h]), c('half', [], [0.5])])])]);
      const p = b.op('Pow', [b.op('Clip', [g, c('lo', [], [0.05]), c('hi', [], [2])]), c('e', [], [1.5])]);
      const y = b.op('Softmax', [b.op('Where', [b.op('Greater', [h, c('zero', [], [0])]), p, h])], { axis: 0 });
      b.output(b.op('ReduceSum', [b.op('Mul', [y, c('R', [m, n], away(m * n, 21))])], { keepdims: 0 }), 'loss', elemType, []);
      const model = decodeModel(encodeModelToBytes(b.build({ opsetImports: { '': 20 } })));
      const { grads } = differentiate(model, { loss: model.graph.outputs[0]!, wrt: [model.graph.inputs[0]!, model.graph.inputs[1]!] });
      model.graph.outputs.push(...grads);
      const s = await ort.InferenceSession.create(encodeModelToBytes(model), { logSeverityLevel: 3 });
      const feed = (v: number[], dims: number[]) => (half ? new ort.Tensor('float16', float32ToFloat16Bits(v), dims) : new ort.Tensor('float32', Float32Array.from(v), dims));
      const res = await s.run({ x: feed(away(m * k, 22), [m, k]), w: feed(away(k * n, 23), [k, n]) });
      await s.release();
      return grads.map((gv) => {
        const d = res[gv.name]!.data;
        return half ? float16BitsToFloat32Array(d as Uint16Array) : (d as Float32Array);
      });
    }
    const [g16, g32] = [await grads(DataType.FLOAT16), await grads(DataType.FLOAT)];
    let maxErr = 0;
    for (const [i, ref] of g32.entries()) {
      const scale = Math.max(...ref.map(Math.abs));
      assert.ok(scale > 1e-3, 'the gradient is not trivially zero');
      for (let j = 0; j < ref.length; j++) maxErr = Math.max(maxErr, Math.abs(g16[i]![j]! - ref[j]!) / scale);
    }
    assert.ok(maxErr <= 2e-2, `float16 gradient within 2e-2 of float32 (relative to its scale): ${maxErr}`);
    t.diagnostic(`max |g16 − g32| / max|g32| = ${maxErr.toExponential(2)}`);
  });
});

describe('MatMul with 1-D operands', () => {
  const cases: Array<[number[], number[]]> = [
    [[4], [4, 5]],
    [[2, 3, 4], [4]],
    [[4], [4]],
    [[4], [2, 4, 3]],
  ];
  for (const [sa, sb] of cases) {
    test(`${JSON.stringify(sa)} · ${JSON.stringify(sb)}`, async (t) => {
      await check(t, { inputs: [{ name: 'a', shape: sa }, { name: 'b', shape: sb }], build: (b, [x, y]) => b.op('MatMul', [x!, y!]) });
    });
  }
});
