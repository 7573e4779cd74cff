/**
 * Autodiff engine and gradient rules, each checked against central finite differences through ORT
 * (see helpers/gradcheck.ts for the tolerances and why they hold).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { differentiate } from '../../src/training/autodiff/engine.js';
import { gradCheck } from '../helpers/gradcheck.js';

describe('engine', () => {
  test('a node without a rule on the path is an E_UNSUPPORTED error naming op and node', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', DataType.FLOAT, [2, 3]);
    const y = b.op('Hardmax', [x], undefined, { name: 'hm' });
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    b.output(loss, 'loss', DataType.FLOAT, []);
    const m = b.build();
    assert.throws(
      () => differentiate(m, { loss: m.graph.outputs[0]!, wrt: [m.graph.inputs[0]!] }),
      (e: unknown) => isFrugalError(e, 'E_UNSUPPORTED') && /no gradient rule for Hardmax node 'hm'/.test((e as Error).message),
    );
  });

  test('frozen inputs and off-path nodes get no gradient work', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', DataType.FLOAT, [2, 3]);
    const w = b.input('w', DataType.FLOAT, [3, 4]);
    const frozen = b.input('frozen', DataType.FLOAT, [3, 4]);
    const h = b.op('MatMul', [x, w]);
    const side = b.op('MatMul', [x, frozen]); // not on the loss path
    const loss = b.op('ReduceSum', [b.op('Relu', [h])], { keepdims: 0 });
    b.output(loss, 'loss', DataType.FLOAT, []);
    b.output(side, 'side', DataType.FLOAT, [2, 4]);
    const m = b.build();
    const before = m.graph.nodes.length;
    const { grads } = differentiate(m, { loss: m.graph.outputs[0]!, wrt: [m.graph.inputs[1]!] });
    assert.equal(grads.length, 1);
    const backward = m.graph.nodes.slice(before);
    // Only the path loss ← ReduceSum ← Relu ← MatMul(x, w) is differentiated, and only w's side of MatMul.
    assert.ok(!backward.some((n) => n.inputs.includes(m.graph.values.get('frozen')!)), 'nothing reads the frozen weight');
    assert.equal(backward.filter((n) => n.opType === 'MatMul').length, 1, 'dW only, no dX');
  });
});

describe('gradient rules (finite differences through ORT)', () => {
  test('Add with broadcasting', async () => {
    await gradCheck({ inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [3, 1] }], build: (b, [x, y]) => b.op('Add', [x!, y!]) });
  });
  test('Sub and Mul with broadcasting', async () => {
    await gradCheck({ inputs: [{ name: 'a', shape: [4] }, { name: 'b', shape: [2, 3, 4] }], build: (b, [x, y]) => b.op('Mul', [b.op('Sub', [x!, y!]), y!]) });
  });
  test('MatMul, batched with a broadcast operand', async () => {
    await gradCheck({ inputs: [{ name: 'a', shape: [2, 3, 4] }, { name: 'b', shape: [4, 5] }], build: (b, [x, y]) => b.op('MatMul', [x!, y!]) });
    await gradCheck({ inputs: [{ name: 'a', shape: [2, 1, 3, 4] }, { name: 'b', shape: [3, 4, 2] }], build: (b, [x, y]) => b.op('MatMul', [x!, y!]) });
  });
  test('Add where shapes are unknown until run time (broadcast decided in the graph)', async () => {
    await gradCheck({
      inputs: [
        { name: 'a', shape: [2, 3], declared: [null, 3] },
        { name: 'b', shape: [1, 3], declared: [null, 3] },
      ],
      build: (b, [x, y]) => b.op('Add', [x!, y!]),
      outputShapes: [[2, 3]],
    });
  });
  test('Slice with bounds computed at run time (position tables sliced to the sequence length)', async () => {
    await gradCheck({
      inputs: [
        { name: 'table', shape: [7, 3] },
        { name: 'ids', shape: [2, 4], elemType: DataType.INT64, differentiable: false },
      ],
      build: (b, [table, ids]) => {
        const seq = b.op('Gather', [b.op('Shape', [ids!]), b.constant('one', DataType.INT64, [1], [1])], { axis: 0 });
        const start = b.constant('start', DataType.INT64, [1], [2]);
        return b.op('Slice', [table!, start, b.op('Add', [seq, start]), b.constant('ax', DataType.INT64, [1], [0])]);
      },
      outputShapes: [[4, 3]],
    });
  });
  test('Relu', async () => {
    await gradCheck({ inputs: [{ name: 'x', shape: [3, 5] }], build: (b, [x]) => b.op('Relu', [x!]) });
  });
});
