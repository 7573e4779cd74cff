/** Pass infrastructure and the cleanup passes, proven in ORT (exact rewrites: identical outputs). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { deadCodePass, removeIdentityPass } from '../../src/passes/cleanup.js';
import { PassManager, type Pass } from '../../src/passes/pass.js';
import { createSession, randomFeeds, feedSpecsOf } from '../../src/runtime/index.js';
import { decodeModel, encodeModelToBytes } from '../../src/onnx/index.js';

function model() {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, ['n', 4]);
  const w = b.constant('w', DataType.FLOAT, [4, 4], Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)));
  const i1 = b.op('Identity', [x]);
  const h = b.op('Relu', [b.op('MatMul', [i1, w])]);
  b.op('Neg', [h]); // dead
  b.graph.addInitializer('unused', Tensor.fromArray(DataType.FLOAT, [2], [1, 2]));
  b.output(b.op('Identity', [h]), 'y', DataType.FLOAT, ['n', 4]);
  return b.build();
}

test('cleanup passes: identical ORT outputs, reported stats', async () => {
  const m = model();
  const before = encodeModelToBytes(m);
  const r = await new PassManager([removeIdentityPass, deadCodePass]).run(m);
  assert.deepEqual(r.passes.map((p) => [p.name, p.stats]), [
    ['remove-identity', { removed: 1, keptForGraphOutputs: 1 }],
    ['dead-code', { nodesRemoved: 1, initializersRemoved: 1 }],
  ]);
  assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), ['MatMul', 'Relu', 'Identity']);
  const feeds = randomFeeds(feedSpecsOf(r.model), { seed: 3, dims: { n: 5 } });
  const a = await createSession(decodeModel(before));
  const b = await createSession(r.model);
  const ya = (await a.run(feeds)).y!.toArray();
  const yb = (await b.run(feeds)).y!.toArray();
  assert.deepEqual(Array.from(yb as Float32Array), Array.from(ya as Float32Array));
  await a.release();
  await b.release();
});

test('PassManager names the failing pass and verifies between passes', async () => {
  const broken: Pass = {
    name: 'break-things',
    run(m) {
      m.graph.nodes.reverse(); // no longer topologically sorted
      return { model: m, modified: true, stats: {} };
    },
  };
  await assert.rejects(new PassManager([removeIdentityPass, broken]).run(model()), (e: unknown) => isFrugalError(e, 'E_INVALID_MODEL') && /^pass 'break-things': model failed verification/.test((e as Error).message));
  const throwing: Pass = { name: 'throws', run: () => { throw new Error('boom'); } };
  await assert.rejects(new PassManager([throwing]).run(model()), /pass 'throws' failed: boom/);
});
