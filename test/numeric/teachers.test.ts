/**
 * The embedded teacher models (models/, reproduced by `npm run teachers`) load, pass verification and
 * still reach their accuracy goals on the fixed held-out splits of real data.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import { verify } from '../../src/ir/verify.js';
import { loadModel } from '../../src/onnx/index.js';
import { evaluateModel } from '../../src/evaluation/index.js';

const TEACHERS = [
  { file: 'models/mnist-cnn.onnx', dataset: 'mnist', goal: 0.985 },
  { file: 'models/spam-transformer.onnx', dataset: 'spam', goal: 0.97 },
] as const;

for (const t of TEACHERS) {
  test(`teacher ${t.file} reaches ${t.goal * 100}% on the ${t.dataset} test split`, async () => {
    assert.ok(statSync(t.file).size <= 5 * 1024 * 1024, 'each teacher is at most 5 MB');
    const model = await loadModel(t.file);
    verify(model);
    const r = await evaluateModel(model, t.dataset, {});
    assert.ok(r.accuracy >= t.goal, `${t.file}: accuracy ${r.accuracy} < ${t.goal}`);
    assert.equal(r.count, t.dataset === 'mnist' ? 2000 : 1209);
  });
}
