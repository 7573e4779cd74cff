import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { float, floats, typed, type Value } from '../../src/ir/node.js';
import { inferShapes, shapeRuleFor } from '../../src/ir/shape-inference.js';
import { AttributeType, type Dim, type Shape, shapeOf } from '../../src/ir/types.js';
import { encodeModelToBytes, loadModel } from '../../src/onnx/index.js';

const F = DataType.FLOAT;
const I64 = DataType.INT64;

function shapeOfValue(v: Value): Shape | undefined {
  return shapeOf(v.type);
}

/** Builds a one-op graph over inputs of the given shapes and returns the inferred output shape(s). */
function infer1(
  op: string,
  inputs: Array<Shape | { const: number[]; dtype?: number; dims?: number[] } | null>,
  attrs: Parameters<GraphBuilder['op']>[2] = {},
  opset = 17,
  outputs = 1,
): Array<Shape | undefined> {
  const b = new GraphBuilder();
  const ins = inputs.map((s, i) => {
    if (s === null) return null;
    if (!Array.isArray(s)) return b.constant(`c${i}`, s.dtype ?? I64, s.dims ?? [s.const.length], s.const);
    return b.input(`x${i}`, F, s);
  });
  const outs = b.ops(op, ins, outputs, attrs);
  outs.forEach((o) => b.output(o));
  const m = b.build({ opsetImports: { '': opset } });
  const r = inferShapes(m, { strict: true });
  assert.deepEqual(r.unknownOps, {});
  return outs.map(shapeOfValue);
}

describe('shape inference: elementwise and broadcasting', () => {
  it('broadcasts numeric and symbolic dims', () => {
    assert.deepEqual(infer1('Add', [[2, 1, 4], [3, 1]]), [[2, 3, 4]]);
    assert.deepEqual(infer1('Mul', [['batch', 'seq', 768], [768]]), [['batch', 'seq', 768]]);
    assert.deepEqual(infer1('Add', [['batch', 1], [1, 'n']]), [['batch', 'n']]);
    // A fixed size beats a symbol (the symbol must be 1 or equal); two different symbols are unknown.
    assert.deepEqual(infer1('Sub', [['a', 5], [3, 'b']]), [[3, 5]]);
    assert.deepEqual(infer1('Div', [['a'], ['b']]), [[null]]);
    assert.deepEqual(infer1('Where', [[1, 'seq'], [4, 1], []]), [[4, 'seq']]);
  });

  it('fails on incompatible dims in strict mode and warns otherwise', () => {
    assert.throws(() => infer1('Add', [[2, 3], [4]]), (e) => isFrugalError(e, 'E_SHAPE') && /Add node 'Add_1'.*broadcast/.test(e.message));
    const b = new GraphBuilder();
    const y = b.op('Add', [b.input('a', F, [2, 3]), b.input('b', F, [4])]);
    b.output(y);
    const r = inferShapes(b.build());
    assert.equal(r.warnings.length, 1);
    assert.equal(y.type, undefined);
  });

  it('gives comparisons bool outputs and Cast its target type', () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, ['n', 3]);
    const eq = b.op('Equal', [x, x]);
    const c = b.op('Cast', [x], { to: DataType.INT32 });
    const sh = b.op('Shape', [x]);
    b.output(eq);
    const m = b.build();
    inferShapes(m);
    assert.deepEqual(eq.type, { kind: 'tensor', elemType: DataType.BOOL, shape: ['n', 3] });
    assert.deepEqual(c.type, { kind: 'tensor', elemType: DataType.INT32, shape: ['n', 3] });
    assert.deepEqual(sh.type, { kind: 'tensor', elemType: I64, shape: [2] });
  });

  it('lists unknown ops and leaves their outputs untyped', () => {
    const b = new GraphBuilder();
    const y = b.op('FancyOp', [b.input('x', F, [1])], {}, { domain: 'example.com' });
    const z = b.op('Relu', [y]);
    const r = inferShapes(b.build({ opsetImports: { '': 17, 'example.com': 1 } }));
    assert.deepEqual(r.unknownOps, { 'example.com::FancyOp': 1 });
    assert.equal(y.type, undefined);
    assert.equal(z.type, undefined);
  });
});

describe('shape inference: nn ops', () => {
  it('Conv with pads, strides, dilations, groups and auto_pad', () => {
    assert.deepEqual(infer1('Conv', [[1, 3, 32, 32], [16, 3, 3, 3]], { pads: [1, 1, 1, 1] }), [[1, 16, 32, 32]]);
    assert.deepEqual(infer1('Conv', [[1, 3, 32, 32], [16, 3, 3, 3]], { strides: [2, 2] }), [[1, 16, 15, 15]]);
    assert.deepEqual(infer1('Conv', [[1, 3, 32, 32], [16, 3, 3, 3]], { dilations: [2, 2] }), [[1, 16, 28, 28]]);
    assert.deepEqual(infer1('Conv', [['N', 8, 10, 9], [8, 2, 3, 3]], { group: 4, strides: [2, 2], auto_pad: 'SAME_UPPER' }), [['N', 8, 5, 5]]);
    assert.deepEqual(infer1('Conv', [[1, 3, 10], [4, 3, 3]], { auto_pad: 'VALID', strides: [3] }), [[1, 4, 3]]);
    assert.throws(() => infer1('Conv', [[1, 3, 8, 8], [4, 2, 3, 3]]), /channels/);
  });

  it('pooling with ceil_mode, and global pooling', () => {
    assert.deepEqual(infer1('MaxPool', [[1, 1, 6, 6]], { kernel_shape: [3, 3], strides: [2, 2] }, 17, 2), [[1, 1, 2, 2], [1, 1, 2, 2]]);
    assert.deepEqual(infer1('MaxPool', [[1, 1, 6, 6]], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }), [[1, 1, 3, 3]]);
    // The last window would start in the padding: dropped.
    assert.deepEqual(infer1('AveragePool', [[1, 1, 5, 5]], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }), [[1, 1, 3, 3]]);
    assert.deepEqual(infer1('GlobalAveragePool', [['N', 64, 7, 7]]), [['N', 64, 1, 1]]);
  });

  it('Gemm with transA/transB, MatMul with 1-D and batched operands', () => {
    assert.deepEqual(infer1('Gemm', [[4, 3], [5, 3]], { transB: 1 }), [[4, 5]]);
    assert.deepEqual(infer1('Gemm', [[3, 4], [3, 5]], { transA: 1 }), [[4, 5]]);
    assert.throws(() => infer1('Gemm', [[4, 3], [5, 3]]), /inner dimensions/);
    assert.deepEqual(infer1('MatMul', [['b', 1, 'seq', 64], [12, 64, 'seq']]), [['b', 12, 'seq', 'seq']]);
    assert.deepEqual(infer1('MatMul', [[7], [7, 3]]), [[3]]);
    assert.deepEqual(infer1('MatMul', [[2, 5, 7], [7]]), [[2, 5]]);
  });

  it('normalizations and recurrent layers', () => {
    assert.deepEqual(infer1('LayerNormalization', [['b', 's', 8], [8], [8]], { axis: -1 }, 17, 3), [['b', 's', 8], ['b', 's', 1], ['b', 's', 1]]);
    assert.deepEqual(infer1('BatchNormalization', [[2, 3, 4, 4], [3], [3], [3], [3]]), [[2, 3, 4, 4]]);
    assert.deepEqual(
      infer1('LSTM', [['seq', 2, 10], [2, 28, 10], [2, 28, 7]], { hidden_size: 7, direction: 'bidirectional' }, 17, 3),
      [['seq', 2, 2, 7], [2, 2, 7], [2, 2, 7]],
    );
    assert.deepEqual(infer1('GRU', [[3, 5, 4], [1, 18, 4], [1, 18, 6]], { layout: 1 }, 17, 2), [[3, 5, 1, 6], [3, 1, 6]]);
  });
});

describe('shape inference: tensor manipulation', () => {
  it('Reshape with 0 and -1, symbolic products, allowzero', () => {
    assert.deepEqual(infer1('Reshape', [[2, 3, 4], { const: [0, -1] }]), [[2, 12]]);
    assert.deepEqual(infer1('Reshape', [['batch', 'seq', 768], { const: [0, 0, 12, 64] }]), [['batch', 'seq', 12, 64]]);
    assert.deepEqual(infer1('Reshape', [['batch', 'seq', 768], { const: [-1, 768] }]), [['batch*seq', 768]]);
    assert.deepEqual(infer1('Reshape', [['batch', 'seq', 12, 64], { const: [0, 0, -1] }]), [['batch', 'seq', 768]]);
    assert.deepEqual(infer1('Reshape', [[0, 3], { const: [0, 3] }], { allowzero: 1 }), [[0, 3]]);
    // Opset 1-4 read the target from an attribute.
    assert.deepEqual(infer1('Reshape', [[2, 6]], { shape: [3, -1] }, 4), [[3, 4]]);
  });

  it('resolves Reshape targets computed by Shape → Gather → Unsqueeze → Concat', () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, ['batch', 'seq', 768]);
    const shape = b.op('Shape', [x]);
    const dim = (i: number) => b.op('Unsqueeze', [b.op('Gather', [shape, b.constant(`i${i}`, I64, [], [i])], { axis: 0 }), b.constant(`ax${i}`, I64, [1], [0])]);
    const heads = b.constant('heads', I64, [1], [12]);
    const hd = b.op('Div', [b.op('Gather', [shape, b.constant('i2', I64, [1], [2])]), heads]);
    const target = b.op('Concat', [dim(0), dim(1), heads, hd], { axis: 0 });
    const y = b.op('Reshape', [x, target]);
    const t = b.op('Transpose', [y], { perm: [0, 2, 1, 3] });
    b.output(t);
    const m = b.build({ opsetImports: { '': 13 } });
    inferShapes(m, { strict: true });
    assert.deepEqual(shapeOfValue(t), ['batch', 12, 'seq', 64]);
    inferShapes(m, { inputShapes: { x: [2, 5, 768] }, strict: true });
    assert.deepEqual(shapeOfValue(t), [2, 12, 5, 64]);
  });

  it('folds Range, ConstantOfShape, Cast, Expand and Where over shape values', () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, [3, 'n']);
    const shape = b.op('Shape', [x]);
    const n = b.op('Gather', [shape, b.constant('one', I64, [], [1])]);
    const r = b.op('Range', [b.constant('zero', I64, [], [0]), n, b.constant('step', I64, [], [1])]);
    const cs = b.op('ConstantOfShape', [b.op('Cast', [shape], { to: I64 })]);
    const eq = b.op('Equal', [shape, b.constant('neg', I64, [2], [-1, -1])]);
    const fixed = b.op('Where', [eq, b.constant('ones', I64, [2], [1, 1]), shape]);
    const ex = b.op('Expand', [b.input('s', F, [1, 1]), fixed]);
    [r, cs, ex].forEach((v) => b.output(v));
    inferShapes(b.build(), { strict: true });
    assert.deepEqual(shapeOfValue(r), ['n']);
    assert.deepEqual(shapeOfValue(cs), [3, 'n']);
    assert.deepEqual(shapeOfValue(ex), [3, 'n']);
  });

  it('Transpose default perm, Flatten, Gather axis', () => {
    assert.deepEqual(infer1('Transpose', [[2, 3, 4]]), [[4, 3, 2]]);
    assert.deepEqual(infer1('Flatten', [['N', 3, 4, 5]]), [['N', 60]]);
    assert.deepEqual(infer1('Flatten', [[2, 3, 4, 5]], { axis: 0 }), [[1, 120]]);
    assert.deepEqual(infer1('Flatten', [[2, 3, 4, 5]], { axis: -1 }), [[24, 5]]);
    assert.deepEqual(infer1('Gather', [[5, 6, 7], { const: [0, 1, 2, 3], dims: [2, 2] }], { axis: 1 }), [[5, 2, 2, 7]]);
    assert.deepEqual(infer1('Gather', [[5, 6, 7], { const: [0], dims: [] }], { axis: -1 }), [[5, 6]]);
  });

  it('Slice with negative, clamped and INT64_MAX ends, steps, and the opset 1 attribute form', () => {
    const big = Number.MAX_SAFE_INTEGER;
    assert.deepEqual(infer1('Slice', [[10, 20], { const: [1, -5] }, { const: [big, -1] }]), [[9, 4]]);
    assert.deepEqual(infer1('Slice', [[10, 20], { const: [-3] }, { const: [100] }, { const: [1] }]), [[10, 3]]);
    assert.deepEqual(infer1('Slice', [[10], { const: [-1] }, { const: [-big] }, { const: [0] }, { const: [-2] }]), [[5]]);
    assert.deepEqual(infer1('Slice', [['n', 8], { const: [0] }, { const: [big] }, { const: [0] }]), [['n', 8]]);
    assert.deepEqual(infer1('Slice', [[4, 8]], { starts: [1], ends: [3], axes: [1] }, 9), [[4, 2]]);
  });

  it('Split: opset 13 split input vs opset 18 num_outputs (uneven)', () => {
    assert.deepEqual(infer1('Split', [[6, 4], { const: [2, 4] }], { axis: 0 }, 13, 2), [[2, 4], [4, 4]]);
    assert.deepEqual(infer1('Split', [[6, 4]], { axis: 1 }, 13, 2), [[6, 2], [6, 2]]);
    assert.deepEqual(infer1('Split', [[7, 4]], { axis: 0, num_outputs: 3 }, 18, 3), [[3, 4], [3, 4], [1, 4]]);
    assert.deepEqual(infer1('Split', [[6, 4]], { axis: 0, split: [1, 5] }, 11, 2), [[1, 4], [5, 4]]);
  });

  it('Squeeze and Unsqueeze: attribute form (opset 11) vs input form (opset 13)', () => {
    assert.deepEqual(infer1('Squeeze', [[1, 3, 1, 5]], { axes: [0, -2] }, 11), [[3, 5]]);
    assert.deepEqual(infer1('Squeeze', [[1, 3, 1, 5], { const: [2] }], {}, 13), [[1, 3, 5]]);
    assert.deepEqual(infer1('Squeeze', [[1, 3, 1, 5]], {}, 13), [[3, 5]]);
    assert.deepEqual(infer1('Unsqueeze', [[3, 5]], { axes: [0, 3] }, 11), [[1, 3, 5, 1]]);
    assert.deepEqual(infer1('Unsqueeze', [['n'], { const: [-1, 0] }], {}, 13), [[1, 'n', 1]]);
  });

  it('Concat, Pad, Tile, Resize, Expand', () => {
    assert.deepEqual(infer1('Concat', [['b', 3], ['b', 5], ['b', 'k']], { axis: 1 }), [['b', null]]);
    assert.deepEqual(infer1('Concat', [['b', 3], ['b', 5]], { axis: -1 }), [['b', 8]]);
    assert.deepEqual(infer1('Concat', [['s', 4], ['s', 4]], { axis: 0 }), [['2*s', 4]]);
    assert.deepEqual(infer1('Pad', [[1, 3, 4, 4], { const: [0, 0, 1, 2, 0, 0, 3, 4] }], {}, 13), [[1, 3, 8, 10]]);
    assert.deepEqual(infer1('Pad', [[2, 2]], { pads: [1, 0, 1, 0] }, 9), [[4, 2]]);
    assert.deepEqual(infer1('Tile', [['n', 2], { const: [3, 2] }]), [['3*n', 4]]);
    assert.deepEqual(infer1('Resize', [[1, 3, 5, 5], null, { const: [1, 1, 2, 1.5], dtype: F }], { mode: 'nearest' }), [[1, 3, 10, 7]]);
    assert.deepEqual(infer1('Resize', [[1, 3, 5, 5], null, null, { const: [1, 3, 8, 9] }]), [[1, 3, 8, 9]]);
    assert.deepEqual(infer1('Upsample', [[1, 3, 5, 5]], { scales: floats([1, 1, 2, 2]) }, 7), [[1, 3, 10, 10]]);
  });

  it('ReduceMean keepdims and noop_with_empty_axes, ReduceSum axes input, ArgMax, TopK', () => {
    assert.deepEqual(infer1('ReduceMean', [['b', 's', 8]], { axes: [-1] }, 13), [['b', 's', 1]]);
    assert.deepEqual(infer1('ReduceMean', [['b', 's', 8]], { axes: [1, 2], keepdims: 0 }, 13), [['b']]);
    assert.deepEqual(infer1('ReduceMean', [[2, 3]], { keepdims: 0 }, 13), [[]]);
    assert.deepEqual(infer1('ReduceMean', [[2, 3], { const: [0] }], {}, 18), [[1, 3]]);
    assert.deepEqual(infer1('ReduceMean', [[2, 3]], { noop_with_empty_axes: 1 }, 18), [[2, 3]]);
    assert.deepEqual(infer1('ReduceSum', [[2, 3], { const: [1] }], { keepdims: 0 }, 13), [[2]]);
    assert.deepEqual(infer1('ArgMax', [[4, 5]], { axis: 1, keepdims: 0 }), [[4]]);
    assert.deepEqual(infer1('TopK', [[4, 10], { const: [3] }], {}, 11, 2), [[4, 3], [4, 3]]);
  });

  it('Constant and Einsum', () => {
    assert.deepEqual(infer1('Constant', [], { value_ints: [1, 2, 3] }), [[3]]);
    assert.deepEqual(infer1('Constant', [], { value_float: float(1) }), [[]]);
    assert.deepEqual(infer1('Einsum', [['b', 4, 5], ['b', 5, 6]], { equation: 'bij,bjk->bik' }, 12), [['b', 4, 6]]);
    assert.deepEqual(infer1('Einsum', [[2, 3, 4, 5], [2, 3, 5, 6]], { equation: '...ij,...jk' }, 12), [[2, 3, 4, 6]]);
  });
});

describe('shape inference: declared types, input overrides, control flow', () => {
  it('a declared concrete dim wins over an inferred symbol; concrete conflicts warn or throw', () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, ['n', 4]);
    const y = b.op('Relu', [x]);
    b.output(y, 'y', F, [8, 4]);
    const m = b.build();
    assert.equal(inferShapes(m).warnings.length, 0);
    assert.deepEqual(shapeOfValue(y), [8, 4]);
    y.type = { kind: 'tensor', elemType: F, shape: [8, 5] };
    const r = inferShapes(m);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /Relu node.*declared \[8,5\] but inferred \[n,4\]/);
    y.type = { kind: 'tensor', elemType: F, shape: [8, 5] };
    assert.throws(() => inferShapes(m, { strict: true }), (e) => isFrugalError(e, 'E_SHAPE'));
  });

  it('inputShapes binds symbols across inputs and rejects unknown names or wrong ranks', () => {
    const b = new GraphBuilder();
    const ids = b.input('ids', I64, ['batch', 'seq']);
    const mask = b.input('mask', F, ['batch', 'seq']);
    const y = b.op('Add', [b.op('Cast', [ids], { to: F }), mask]);
    b.output(y);
    const m = b.build();
    inferShapes(m, { inputShapes: { ids: [1, 16] } });
    assert.deepEqual(shapeOfValue(mask), [1, 16]);
    assert.deepEqual(shapeOfValue(y), [1, 16]);
    assert.throws(() => inferShapes(m, { inputShapes: { nope: [1] } }), (e) => isFrugalError(e, 'E_USAGE') && /ids, mask/.test(e.message));
    assert.throws(() => inferShapes(m, { inputShapes: { ids: [1] } }), (e) => isFrugalError(e, 'E_USAGE'));
  });

  it('infers If branches and Loop/Scan bodies', () => {
    const outer = new GraphBuilder();
    const x = outer.input('x', F, ['n', 4]);
    const cond = outer.input('c', DataType.BOOL, []);
    const branch = (op: string, name: string) => {
      const g = new GraphBuilder(name);
      g.graph.parent = outer.graph;
      const o = g.op(op, [x], {}, { outputNames: [`${name}_out`] });
      g.output(o);
      return g.graph;
    };
    const y = outer.node('If', [cond], { then_branch: typed(AttributeType.GRAPH, branch('Relu', 'then')), else_branch: typed(AttributeType.GRAPH, branch('Neg', 'else')) }, { outputCount: 1 }).outputs[0]!;
    outer.output(y);
    // Scan (opset 9+): one state [4], one scan input over axis 0.
    const body = new GraphBuilder('body');
    body.graph.parent = outer.graph;
    const st = body.input('st', F);
    const xi = body.input('xi', F);
    const nst = body.op('Add', [st, xi]);
    body.output(nst);
    body.output(body.op('Mul', [nst, nst]));
    const [fin, ys] = outer.node('Scan', [outer.input('s0', F, [4]), x], { body: typed(AttributeType.GRAPH, body.graph), num_scan_inputs: 1 }, { outputCount: 2 }).outputs as Value[];
    // Loop: trip count 5, no condition, one loop-carried value and one scan output.
    const lb = new GraphBuilder('loop_body');
    lb.graph.parent = outer.graph;
    lb.input('iter', I64, []);
    const lc = lb.input('cond_in', DataType.BOOL, []);
    const lv = lb.input('v', F);
    lb.output(lb.op('Identity', [lc]));
    const next = lb.op('Relu', [lv]);
    lb.output(next);
    lb.output(lb.op('Neg', [next]));
    const [carried, stacked] = outer.node('Loop', [outer.constant('trip', I64, [], [5]), null, x], { body: typed(AttributeType.GRAPH, lb.graph) }, { outputCount: 2 }).outputs as Value[];
    const m = outer.build({ opsetImports: { '': 11 } });
    const r = inferShapes(m, { strict: true });
    assert.deepEqual(shapeOfValue(carried!), ['n', 4]);
    assert.deepEqual(shapeOfValue(stacked!), [5, 'n', 4]);
    assert.deepEqual(r.unknownOps, {});
    assert.deepEqual(shapeOfValue(y!), ['n', 4]);
    assert.deepEqual(shapeOfValue(xi), [4]);
    assert.deepEqual(shapeOfValue(fin!), [4]);
    assert.deepEqual(shapeOfValue(ys!), ['n', 4]);
  });
});

// ---------------------------------------------------------------------------------------------
// Checked against ONNX Runtime: every inferred concrete shape must be the shape ORT produces.

const ORT_TYPES: Record<number, ort.Tensor.Type> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' };

/** Seeded PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Random feeds for the graph inputs of `m` (integer inputs get 0/1, safe as indices and masks). */
function feedsFor(m: Model, random = rng(7)): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of m.graph.inputs) {
    if (v.initializer) continue;
    const s = shapeOfValue(v) as number[];
    const n = s.reduce((a, b) => a * b, 1);
    const t = ORT_TYPES[(v.type as { elemType: number }).elemType]!;
    const data =
      t === 'float32' ? Float32Array.from({ length: n }, () => random() * 2 - 1)
      : t === 'float64' ? Float64Array.from({ length: n }, () => random() * 2 - 1)
      : t === 'int64' ? BigInt64Array.from({ length: n }, () => BigInt(random() < 0.5 ? 0 : 1))
      : t === 'int32' ? Int32Array.from({ length: n }, () => (random() < 0.5 ? 0 : 1))
      : t === 'int8' ? Int8Array.from({ length: n }, () => 1)
      : t === 'float16' ? Uint16Array.from({ length: n }, () => 0x3c00)
      : Uint8Array.from({ length: n }, () => 1);
    feeds[v.name] = new ort.Tensor(t, data, s);
  }
  return feeds;
}

interface OrtCheck {
  checked: number;
  matched: number;
  mismatches: string[];
}

/**
 * Exposes every value whose shape a rule inferred as concrete as a graph output (declared without a
 * shape so ORT does not check it against ours), runs the model in ORT, and compares shapes.
 */
async function checkAgainstOrt(m: Model, feeds: Record<string, ort.Tensor>): Promise<OrtCheck> {
  const expected = new Map<string, number[]>();
  const outs = new Set(m.graph.outputs);
  for (const n of m.graph.nodes) {
    if (!shapeRuleFor(n)) continue;
    for (const o of n.outputs) {
      const s = o && shapeOfValue(o);
      if (!o || !s || !s.every((d) => typeof d === 'number') || o.type?.kind !== 'tensor') continue;
      expected.set(o.name, s as number[]);
      if (!outs.has(o)) {
        o.type = { kind: 'tensor', elemType: o.type.elemType };
        m.graph.outputs.push(o);
      }
    }
  }
  const session = await ort.InferenceSession.create(encodeModelToBytes(m), { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const fetch = session.outputNames.filter((n) => expected.has(n));
  const res = await session.run(feeds, fetch);
  const r: OrtCheck = { checked: fetch.length, matched: 0, mismatches: [] };
  for (const n of fetch) {
    const got = res[n]!.dims.map(Number);
    const want = expected.get(n)!;
    if (got.length === want.length && got.every((d, i) => d === want[i])) r.matched++;
    else r.mismatches.push(`${n}: inferred [${want.join(',')}], ORT [${got.join(',')}]`);
  }
  await session.release();
  return r;
}

/** Builds a small model, infers shapes, and checks them against ORT. */
async function ortUnit(build: (b: GraphBuilder) => Value[], opset = 17): Promise<OrtCheck> {
  const b = new GraphBuilder();
  for (const v of build(b)) b.output(v);
  const m = b.build({ opsetImports: { '': opset } });
  inferShapes(m, { strict: true });
  return checkAgainstOrt(m, feedsFor(m));
}

describe('shape inference agrees with ONNX Runtime on small graphs', () => {
  it('pooling, convolution, slicing and resizing corner cases', async () => {
    const W = (b: GraphBuilder, name: string, dims: number[]) => b.constant(name, F, dims, new Float32Array(dims.reduce((a, c) => a * c, 1)).fill(0.1));
    const r = await ortUnit((b) => {
      const x = b.input('x', F, [1, 4, 11, 9]);
      const big = Number.MAX_SAFE_INTEGER;
      return [
        b.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }),
        b.op('AveragePool', [x], { kernel_shape: [2, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }),
        b.op('MaxPool', [x], { kernel_shape: [3, 2], strides: [3, 2], auto_pad: 'SAME_UPPER' }),
        b.op('Conv', [x, W(b, 'w1', [6, 2, 3, 3])], { group: 2, strides: [2, 3], auto_pad: 'SAME_UPPER' }),
        b.op('Conv', [x, W(b, 'w2', [5, 4, 2, 3])], { dilations: [2, 2], pads: [0, 1, 2, 0], strides: [1, 2] }),
        b.op('ConvTranspose', [x, W(b, 'w3', [4, 3, 3, 3])], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] }),
        b.op('Slice', [x, b.constant('st', I64, [2], [-4, 20]), b.constant('en', I64, [2], [big, -big]), b.constant('ax', I64, [2], [2, 3]), b.constant('sp', I64, [2], [1, -3])]),
        b.op('Resize', [x, null, b.constant('sc', F, [4], [1, 1, 1.7, 0.6])], { mode: 'nearest' }),
        b.op('Flatten', [x], { axis: 2 }),
        b.op('ReduceSum', [x, b.constant('rax', I64, [1], [1])], { keepdims: 0 }),
      ];
    });
    assert.deepEqual(r.mismatches, []);
    assert.equal(r.checked, 10);
  });
});

const sharedData = path.resolve(process.cwd(), '../shared/data');
const modelsDir = path.join(sharedData, 'models');

/** `name` files under `dir`, recursively. */
function onnxFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? onnxFiles(path.join(dir, e.name)) : e.name.endsWith('.onnx') ? [path.join(dir, e.name)] : []));
}


describe('shape inference agrees with ONNX Runtime on real models', { skip: !existsSync(modelsDir) && `no shared data at ${sharedData}` }, () => {
  const totals = { models: 0, checked: 0, matched: 0 };
  for (const file of existsSync(modelsDir) ? onnxFiles(modelsDir) : []) {
    const rel = path.relative(modelsDir, file);
    it(rel, async (t) => {
      const m = await loadModel(file);
      // Sessions built from bytes cannot resolve external files: bring the data inline.
      for (const g of m.graph.allGraphs()) for (const v of g.initializers()) if (v.initializer!.external) v.initializer!.setBytes(v.initializer!.bytes());
      const inputShapes: Record<string, Dim[]> = {};
      for (const v of m.graph.inputs) {
        const s = shapeOfValue(v);
        if (!v.initializer && s) inputShapes[v.name] = s.map((d) => (typeof d === 'number' ? d : 2));
      }
      const report = inferShapes(m, { inputShapes });
      const feeds = feedsFor(m);
      let r: OrtCheck;
      try {
        r = await checkAgainstOrt(m, feeds);
      } catch (e) {
        // A model ORT itself cannot run at these shapes must have been flagged by inference.
        const original = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
        await assert.rejects(original.run(feeds));
        await original.release();
        assert.ok(report.warnings.length > 0, `ORT rejects ${rel} (${(e as Error).message.slice(0, 200)}) but inference found nothing wrong`);
        t.diagnostic(`ORT cannot run this model; inference warned: ${report.warnings[0]}`);
        return;
      }
      totals.models++;
      totals.checked += r.checked;
      totals.matched += r.matched;
      t.diagnostic(`${r.matched}/${r.checked} inferred shapes match ORT; unknown ops ${JSON.stringify(report.unknownOps)}`);
      assert.deepEqual(r.mismatches, []);
      assert.ok(r.checked > 0);
    });
  }
  it('summary', (t) => {
    t.diagnostic(`${totals.models} models: ${totals.matched}/${totals.checked} inferred shapes match ONNX Runtime`);
    assert.equal(totals.matched, totals.checked);
  });
});
