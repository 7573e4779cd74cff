/**
 * Pruning with the training engine, on the MNIST teacher and real MNIST data: masks keep pruned weights
 * exactly zero through SGD with momentum and weight decay and through AdamW, gradual pruning reaches its
 * final sparsity, N:M survives fine-tuning, Taylor importance reads real gradients, and fine-tuning a
 * structurally pruned model recovers accuracy.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Model } from '../../src/ir/model.js';
import { loadModel } from '../../src/onnx/index.js';
import { checkNMPattern, findPrunableWeights, readFloats, sparsityReport } from '../../src/passes/prune/index.js';
import { lossGradients, pruneModel } from '../../src/training/prune-recipe.js';
import { isFrugalError } from '../../src/errors.js';

let teacher: Model;
before(async () => {
  teacher = await loadModel('models/mnist-cnn.onnx');
});

const quick = { dataset: 'mnist', limit: 512, evalLimit: 500, batchSize: 64, intraOpThreads: 1 } as const;

function zerosOf(m: Model): Map<string, Uint8Array> {
  return new Map(findPrunableWeights(m).weights.map((w) => [w.value.name, Uint8Array.from(readFloats(w.value), (x) => (x === 0 ? 1 : 0))]));
}

describe('fine-tuning under pruning masks', () => {
  for (const optimizer of [{ kind: 'sgd', momentum: 0.9, weightDecay: 1e-2 }, { kind: 'adamw', weightDecay: 0.1 }] as const) {
    test(`pruned weights stay exactly zero through ${optimizer.kind} (momentum/weight decay)`, async () => {
      const oneShot = await pruneModel(teacher, { method: 'magnitude', sparsity: 0.8, ...quick, evalLimit: 200 });
      const masked = zerosOf(oneShot.model);
      const tuned = await pruneModel(teacher, { method: 'magnitude', sparsity: 0.8, gradual: false, steps: 6, optimizer, lr: 0.05, ...quick, evalLimit: 200 });
      let changed = 0;
      for (const [name, zero] of masked) {
        const w = readFloats(tuned.model.graph.values.get(name)!);
        const o = readFloats(oneShot.model.graph.values.get(name)!);
        for (let i = 0; i < w.length; i++) {
          if (zero[i]) assert.equal(w[i], 0, `${name}[${i}] revived`);
          else if (w[i] !== o[i]) changed++;
        }
      }
      assert.ok(changed > 1000, `the kept weights trained (${changed} changed)`);
      assert.ok(Math.abs(tuned.sparsity - oneShot.sparsity) < 1e-6);
    });
  }

  test('gradual pruning reaches its final sparsity and reports accuracy at each stage', async () => {
    const r = await pruneModel(teacher, { method: 'magnitude', sparsity: 0.75, scope: 'global', steps: 8, ...quick });
    assert.ok(Math.abs(r.sparsity - 0.75) < 1e-5, `sparsity ${r.sparsity}`);
    assert.equal(r.stats.gradual, true);
    assert.ok(r.accuracy && r.accuracy.before > 0.95 && r.accuracy.afterFineTune !== undefined);
  });

  test('2:4 survives fine-tuning', async () => {
    const r = await pruneModel(teacher, { method: 'nm', steps: 4, ...quick });
    checkNMPattern(r.model, 2, 4);
    assert.ok(sparsityReport(r.model).sparsity > 0.49);
  });

  test('Taylor importance from real gradients; structured fine-tuning recovers accuracy', async () => {
    const grads = await lossGradients(teacher, 'mnist', { count: 2 });
    const g = grads.get('conv2.weight')!;
    assert.ok(g.some((x) => x !== 0));
    const r = await pruneModel(teacher, { method: 'structured', ratio: 0.6, importance: 'taylor', taylorBatches: 2, epochs: 1, ...quick, limit: 2048, evalLimit: 1000 });
    assert.ok(r.parameterCount.after < r.parameterCount.before / 3);
    const acc = r.accuracy!;
    assert.ok(acc.afterFineTune! > acc.afterPruning + 0.05, `fine-tuning recovers: ${JSON.stringify(acc)}`);
  });

  test('fine-tuning by distillation from the unpruned model', async () => {
    const r = await pruneModel(teacher, { method: 'structured', ratio: 0.5, distill: true, steps: 8, ...quick });
    assert.ok(r.fineTune?.steps === 8);
    assert.ok(r.accuracy!.afterFineTune! > r.accuracy!.afterPruning, JSON.stringify(r.accuracy));
    await assert.rejects(pruneModel(teacher, { method: 'structured', ratio: 0.5, distill: true, dataset: 'mnist' }), /--distill applies to fine-tuning/);
  });

  test('a dataset that does not fit the model is refused before any work', async () => {
    await assert.rejects(pruneModel(teacher, { method: 'structured', ratio: 0.5, dataset: 'spam' }), (e) => isFrugalError(e) && /input|spam|token/i.test(e.message));
    await assert.rejects(pruneModel(teacher, { method: 'magnitude', epochs: 1 }), (e) => isFrugalError(e, 'E_USAGE') && /--dataset/.test(e.message));
  });
});
