import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GraphBuilder } from '../../src/ir/builder.js';
import { countParameters, estimateCost, FLOPS_PER_ELEMENT } from '../../src/ir/cost.js';
import { DataType } from '../../src/ir/dtype.js';
import { inferShapes } from '../../src/ir/shape-inference.js';
import { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/index.js';

const F = DataType.FLOAT;
const zeros = (dims: number[]) => new Float32Array(dims.reduce((a, b) => a * b, 1));

function costOfOne(build: (b: GraphBuilder) => void): ReturnType<typeof estimateCost> {
  const b = new GraphBuilder();
  build(b);
  const m = b.build();
  inferShapes(m, { strict: true });
  return estimateCost(m);
}

describe('cost model: FLOPs', () => {
  it('MatMul is 2·M·N·K (batched)', () => {
    const r = costOfOne((b) => b.output(b.op('MatMul', [b.input('a', F, [2, 3, 4]), b.constant('w', F, [4, 5], zeros([4, 5]))])));
    assert.equal(r.flops, 2 * (2 * 3) * 5 * 4);
    assert.equal(r.perNode[0]!.paramBytes, 4 * 5 * 4);
  });

  it('Gemm with transB and a bias adds M·N', () => {
    const r = costOfOne((b) =>
      b.output(b.op('Gemm', [b.input('a', F, [4, 3]), b.constant('w', F, [5, 3], zeros([5, 3])), b.constant('c', F, [5], zeros([5]))], { transB: 1 })),
    );
    assert.equal(r.flops, 2 * 4 * 5 * 3 + 4 * 5);
    assert.equal(r.parameterCount, 15 + 5);
  });

  it('Conv is 2·N·Cout·Hout·Wout·(Cin/group)·kh·kw (+ bias), grouped and padded', () => {
    const padded = costOfOne((b) =>
      b.output(b.op('Conv', [b.input('x', F, [1, 3, 32, 32]), b.constant('w', F, [16, 3, 3, 3], zeros([16, 3, 3, 3])), b.constant('bias', F, [16], zeros([16]))], { pads: [1, 1, 1, 1] })),
    );
    assert.equal(padded.flops, 2 * 1 * 16 * 32 * 32 * 3 * 3 * 3 + 16 * 32 * 32);
    const grouped = costOfOne((b) => b.output(b.op('Conv', [b.input('x', F, [2, 8, 10, 10]), b.constant('w', F, [8, 2, 3, 3], zeros([8, 2, 3, 3]))], { group: 4, strides: [2, 2] })));
    // Out [2,8,4,4]; each output reads Cin/group = 2 channels × 3×3.
    assert.equal(grouped.flops, 2 * 2 * 8 * 4 * 4 * 2 * 3 * 3);
  });

  it('elementwise ops cost numel × their table constant; data movement is free', () => {
    const r = costOfOne((b) => {
      const x = b.input('x', F, [4, 10]);
      const s = b.op('Softmax', [b.op('Relu', [x])]);
      b.output(b.op('Reshape', [s, b.constant('shape', DataType.INT64, [1], [-1])]));
    });
    assert.equal(FLOPS_PER_ELEMENT.Softmax, 5);
    assert.equal(r.flops, 40 + 5 * 40);
    assert.deepEqual(
      r.perNode.map((n) => [n.opType, n.flops]),
      [['Relu', 40], ['Softmax', 200], ['Reshape', 0]],
    );
    assert.deepEqual(r.perOpType.Relu, { count: 1, flops: 40 });
    assert.equal(r.flopsKnownFraction, 1);
  });

  it('unknown shapes or ops make the total null and lower the known fraction', () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, ['n', 10]);
    const y = b.op('Relu', [b.op('Mystery', [b.op('Relu', [b.input('z', F, [3])])], {}, { domain: 'x.y' })]);
    b.output(b.op('Tanh', [x]));
    b.output(y);
    const m = b.build({ opsetImports: { '': 17, 'x.y': 1 } });
    const r = estimateCost(m, { infer: true });
    assert.equal(r.flops, null);
    assert.equal(r.knownFlops, 3);
    assert.equal(r.flopsKnownFraction, 1 / 4);
    // Binding the batch dim makes the Tanh known.
    const r2 = estimateCost(m, { infer: { inputShapes: { x: [2, 10] } } });
    assert.equal(r2.perNode.find((n) => n.opType === 'Tanh')!.flops, 20);
  });

  it('LSTM counts its gate products', () => {
    const r = costOfOne((b) => {
      const outs = b.ops('LSTM', [b.input('x', F, [5, 2, 3]), b.constant('W', F, [1, 16, 3], zeros([16 * 3])), b.constant('R', F, [1, 16, 4], zeros([16 * 4]))], 3, { hidden_size: 4 });
      b.output(outs[0]!);
    });
    // seq 5 × batch 2 × 4 gates × hidden 4 × (2·(input 3 + hidden 4) + 1).
    assert.equal(r.flops, 5 * 2 * 4 * 4 * (2 * (3 + 4) + 1));
  });
});

describe('cost model: parameters', () => {
  it('counts each initializer once, by dtype, including sparse ones', () => {
    const b = new GraphBuilder();
    const w = b.constant('w', F, [3, 3], zeros([3, 3]));
    const q = b.constant('q', DataType.INT8, [8], new Int8Array(8));
    const x = b.input('x', F, [2, 3]);
    b.output(b.op('Add', [b.op('MatMul', [x, w]), b.op('MatMul', [x, w])]));
    b.output(b.op('Cast', [q], { to: F }));
    b.graph.addSparseInitializer('sp', {
      values: Tensor.fromArray(F, [2], [1, 2], 'sp'),
      indices: Tensor.fromArray(DataType.INT64, [2], [0, 5]),
      dims: [10],
    });
    const m = b.build();
    const p = countParameters(m);
    assert.deepEqual(p, { parameterCount: 9 + 8 + 2, parameterBytes: 36 + 8 + 8, bytesByDtype: { float32: 44, int8: 8 } });
    const r = estimateCost(m, { infer: true });
    assert.equal(r.parameterCount, p.parameterCount);
    assert.equal(r.parameterBytes, p.parameterBytes);
    assert.deepEqual(r.perNode.map((n) => n.paramBytes), [36, 0, 0, 8]);
  });
});

const modelsDir = path.resolve(process.cwd(), '../shared/data/models');

describe('cost model on real models', { skip: !existsSync(modelsDir) && `no shared data at ${modelsDir}` }, () => {
  it('resnet20 (CIFAR): about 41 M multiply-adds and 0.27 M parameters', async () => {
    const m = await loadModel(path.join(modelsDir, 'resnet20-cifar/resnet20.onnx'));
    const r = estimateCost(m, { infer: true });
    assert.notEqual(r.flops, null);
    const macs = r.flops! / 2;
    assert.ok(macs > 38e6 && macs < 46e6, `resnet20 has ${macs} MACs`);
    assert.ok(r.parameterCount > 0.26e6 && r.parameterCount < 0.28e6, `resnet20 has ${r.parameterCount} parameters`);
    assert.equal(r.parameterCount, countParameters(m).parameterCount);
  });

  it('mnist MLP: FLOPs match its MatMul shapes', async () => {
    const m = await loadModel(path.join(modelsDir, 'mnist-pytorch-mlp/model.onnx'));
    const r = estimateCost(m, { infer: true });
    const mm = m.graph.nodes.filter((n) => n.opType === 'MatMul');
    const want = mm.reduce((s, n) => {
      const w = n.inputs[1]!.initializer!.dims;
      return s + 2 * w[0]! * w[1]!;
    }, 0);
    assert.equal(r.perOpType.MatMul!.flops, want);
    assert.equal(r.flopsKnownFraction, 1);
  });

  it('every real model gets a cost report with known FLOPs after shape binding', async () => {
    for (const rel of ['bert-toy/bert_toy_optimized.onnx', 'squeezenet-imagenet-fp16/SqueezeNet_fp16.onnx', 'scan-control-flow/scan_1.onnx', 'lstm-pytorch/lstm.onnx']) {
      const m = await loadModel(path.join(modelsDir, rel));
      const inputShapes = Object.fromEntries(
        m.graph.inputs.filter((v) => !v.initializer && v.type?.kind === 'tensor' && v.type.shape).map((v) => [v.name, (v.type as { shape: Array<number | string | null> }).shape.map((d) => (typeof d === 'number' ? d : 2))]),
      );
      const r = estimateCost(m, { infer: { inputShapes } });
      assert.notEqual(r.flops, null, `${rel}: unknown FLOPs for ${r.perNode.filter((n) => n.flops === null).map((n) => n.opType).join(',')}`);
      assert.ok(r.flops! > 0);
      assert.equal(r.parameterBytes, countParameters(m).parameterBytes, rel);
    }
  });
});
