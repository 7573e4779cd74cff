/**
 * Distillation: the KL-with-temperature loss against finite differences, teacher logits cached and fed
 * per batch, a distilled student matching the teacher's soft labels better than the hard-label baseline,
 * layer dropping and width reduction initialized from the teacher, resume-equals-uninterrupted, and the
 * bad inputs the issue lists.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { openDatasetFeed } from '../../src/data/feed.js';
import { batches } from '../../src/data/index.js';
import type { Model } from '../../src/ir/model.js';
import { loadModel } from '../../src/onnx/index.js';
import { convertToFloat16 } from '../../src/passes/precision/fp16.js';
import { createSession } from '../../src/runtime/index.js';
import { appendLoss, buildStudent, cacheTeacherLogits, distillModel, HIDDEN_PROJECTION, hiddenState, readFamily, trainBaseline } from '../../src/training/index.js';
import { withOutput } from '../../src/training/distill/hidden.js';
import { topK } from '../../src/training/distill/students.js';
import { buildZooModel } from '../../src/zoo/index.js';
import { gradCheck } from '../helpers/gradcheck.js';

const SPAM = 'models/spam-transformer.onnx';
const MNIST = 'models/mnist-cnn.onnx';
const dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-distill-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const bytesOf = (m: Model, name: string): Buffer => Buffer.from(m.graph.values.get(name)!.initializer!.bytes());

/** Mean over test examples of KL(softmax(t/T) ‖ softmax(s/T)) between two models' logits. */
async function softLabelGap(teacher: Model, student: Model, T: number, testLimit: number): Promise<number> {
  // Each model reads the test images in its own input layout.
  const feed = openDatasetFeed('mnist', teacher, { limit: 1, testLimit });
  const sfeed = openDatasetFeed('mnist', student, { limit: 1, testLimit });
  const [ts, ss] = [await createSession(teacher), await createSession(student)];
  let sum = 0;
  try {
    for (const idx of batches(feed.counts.test, 256)) {
      const b = feed.batch('test', idx);
      const tl = (await ts.runOrt(b.feeds))[ts.outputNames[0]!] as ort.Tensor;
      const sl = (await ss.runOrt(sfeed.batch('test', idx).feeds))[ss.outputNames[0]!] as ort.Tensor;
      const k = tl.dims[1] as number;
      for (let i = 0; i < b.count; i++) {
        const lsm = (x: Float32Array) => {
          const row = Array.from(x.subarray(i * k, (i + 1) * k), (v) => v / T);
          const m = Math.max(...row);
          const z = Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
          return row.map((v) => v - z);
        };
        const lt = lsm(tl.data as Float32Array);
        const ls = lsm(sl.data as Float32Array);
        sum += lt.reduce((a, v, c) => a + Math.exp(v) * (v - ls[c]!), 0);
      }
    }
  } finally {
    await ts.release();
    await ss.release();
  }
  return sum / feed.counts.test;
}

describe('distillation loss', () => {
  for (const [T, alpha] of [[4, 0], [4, 0.5], [0.5, 1]] as const) {
    test(`T²-scaled KL at T=${T} mixed with hard-label CE at alpha=${alpha}: gradient matches finite differences`, async () => {
      const r = await gradCheck({
        dtype: 'float32',
        inputs: [
          { name: 'logits', shape: [4, 5] },
          { name: 'target', shape: [4, 5], data: [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0], differentiable: false },
          { name: 'teacher', shape: [4, 5], differentiable: false },
        ],
        build: (_b, [logits, target, teacher]) => appendLoss(logits!.graph, logits!, { kind: 'distillation', temperature: T, alpha }, { target: target!, teacher: teacher! }).loss,
      });
      assert.equal(r.checked, 20);
    });
  }
});

describe('distillModel', () => {
  test('cached teacher logits are the teacher\'s own outputs, row i for train example i', async () => {
    const teacher = await loadModel(MNIST);
    const cache = await cacheTeacherLogits(teacher, 'mnist', { limit: 300, batchSize: 128 });
    assert.equal(cache.count, 300);
    assert.equal(cache.classes, 10);
    const feed = openDatasetFeed('mnist', teacher, { limit: 300, testLimit: 1 });
    const s = await createSession(teacher);
    const out = (await s.runOrt(feed.batch('train', [257, 3]).feeds))[s.outputNames[0]!] as ort.Tensor;
    await s.release();
    const got = [...cache.logits.subarray(257 * 10, 258 * 10), ...cache.logits.subarray(30, 40)];
    Array.from(out.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - got[i]!) < 1e-4, `logit ${i}: ${v} vs ${got[i]}`));
  });

  test('a student distilled from the teacher matches its soft labels better than the same student trained on hard labels', async () => {
    const teacher = await loadModel(MNIST);
    const student = buildZooModel('mlp', { hidden: [32], seed: 3 });
    const common = { dataset: 'mnist', epochs: 2, limit: 1000, batchSize: 50, lr: 3e-3, seed: 5, evaluate: false, intraOpThreads: 1 };
    const kd = await distillModel({ ...common, teacher, student, temperature: 4, alpha: 0 });
    assert.equal(kd.teacherMode, 'cached');
    const base = await trainBaseline({ ...common, student });
    const gapKd = await softLabelGap(teacher, kd.model, 4, 500);
    const gapBase = await softLabelGap(teacher, base.model, 4, 500);
    assert.ok(gapKd < 0.8 * gapBase, `KL to the teacher's soft labels: distilled ${gapKd}, baseline ${gapBase}`);
  });

  test('online teacher (augmentation on) trains too; resume after a kill gives bit-identical weights', async () => {
    const teacher = await loadModel(MNIST);
    const student = await buildStudent(teacher, 'width=0.25');
    // The derived student keeps the teacher's Dropout, whose training-mode draws a checkpoint cannot hold: off here.
    const opts = { dataset: 'mnist', epochs: 1, limit: 640, batchSize: 64, seed: 2, evaluate: false, intraOpThreads: 1, dropout: false, teacher, student: student.model, temperature: 2, alpha: 0.3 };
    const straight = await distillModel(opts);
    const ckpt = path.join(dir, 'kd.ckpt');
    const killed = await distillModel({ ...opts, checkpoint: ckpt, checkpointEvery: 3, stopAfterSteps: 4 });
    assert.equal(killed.stopped, true);
    const resumed = await distillModel({ ...opts, checkpoint: ckpt, checkpointEvery: 3, resume: true });
    assert.deepEqual(resumed.resumedFrom, { epoch: 0, step: 3 });
    for (const name of straight.trainable) assert.ok(bytesOf(straight.model, name).equals(bytesOf(resumed.model, name)), `weight '${name}' differs after resume`);
    const online = await distillModel({ ...opts, augment: { shift: 1 } });
    assert.equal(online.teacherMode, 'online');
    assert.ok(Number.isFinite(online.finalLoss));
  });
});

describe('hidden-state loss', () => {
  test('the MSE between the student\'s projected hidden state and the teacher\'s is in the training loss, falls, and the projection is stripped from the result', async () => {
    const teacher = await loadModel(MNIST);
    const student = buildZooModel('cnn', { channels: [4, 8], hidden: 32, seed: 1 });
    const common = { dataset: 'mnist', epochs: 2, limit: 512, batchSize: 64, seed: 1, evaluate: false, intraOpThreads: 1, teacher, student, temperature: 4, alpha: 0.5 };
    const cache = await cacheTeacherLogits(withOutput(teacher, hiddenState(teacher, 't').value, 128), 'mnist', { limit: 512, hiddenOutput: hiddenState(teacher, 't').value });
    assert.equal(cache.hiddenWidth, 128);
    const withHidden = await distillModel({ ...common, hiddenLoss: { weight: 0.5 }, cacheTeacher: cache });
    const plain = await distillModel({ ...common, cacheTeacher: cache });
    // The total loss carries the extra term; the returned student is the plain architecture.
    assert.ok(withHidden.epochs[0]!.loss > plain.epochs[0]!.loss, `${withHidden.epochs[0]!.loss} vs ${plain.epochs[0]!.loss}`);
    assert.deepEqual(withHidden.model.graph.outputs.map((v) => v.name), student.graph.outputs.map((v) => v.name));
    assert.equal(withHidden.model.graph.values.get(HIDDEN_PROJECTION), undefined);
    assert.ok(!withHidden.trainable.includes(HIDDEN_PROJECTION));
    // The total (KD + CE + hidden MSE) falls over training: the projection and the student learn it.
    assert.ok(withHidden.epochs[1]!.loss < withHidden.epochs[0]!.loss);
    await assert.rejects(distillModel({ ...common, hiddenLoss: true, augment: { shift: 1 } }), { code: 'E_USAGE', message: /hidden-state loss needs the cached teacher/ });
    await assert.rejects(distillModel({ ...common, student: buildZooModel('mlp'), hiddenLoss: true }), { code: 'E_UNSUPPORTED', message: /student is not a Frugal zoo/ });
  });
});

describe('students', () => {
  test('layer dropping keeps every other encoder layer with the teacher\'s weights byte for byte, and runs', async () => {
    const teacher = await loadModel(SPAM);
    const tf = readFamily(teacher);
    assert.equal(tf.kind, 'transformer');
    assert.equal(tf.config.layers, 2);
    for (const [spec, from] of [['drop-layers', 0], ['keep-layers=1', 1]] as const) {
      const s = await buildStudent(teacher, spec);
      const names = s.model.graph.initializers().map((v) => v.name);
      assert.ok(!names.some((n) => n.startsWith('encoder.layer.1.')), `${spec}: a second layer is left`);
      for (const n of names) {
        const src = n.replace(/^encoder\.layer\.0\./, `encoder.layer.${from}.`);
        assert.ok(bytesOf(s.model, n).equals(bytesOf(teacher, src)), `${spec}: '${n}' differs from the teacher's '${src}'`);
      }
      assert.ok(names.filter((n) => n.startsWith('encoder.layer.0.')).length >= 16);
      // Runs, on the teacher's tokenization (its metadata came along).
      const feed = openDatasetFeed('spam', s.model, { limit: 1, testLimit: 4, evalOnly: true });
      const sess = await createSession(s.model);
      const out = (await sess.runOrt(feed.batch('test', [0, 1, 2, 3]).feeds))[sess.outputNames[0]!] as ort.Tensor;
      await sess.release();
      assert.deepEqual(out.dims, [4, 2]);
      assert.ok(Array.from(out.data as Float32Array).every(Number.isFinite));
    }
  });

  test('width reduction slices the teacher\'s most important channels; transformer widths shrink and the model runs', async () => {
    const teacher = await loadModel(MNIST);
    const s = await buildStudent(teacher, 'width=0.5');
    const tf = readFamily(teacher);
    const sf = readFamily(s.model);
    assert.deepEqual(sf.kind === 'cnn' && [sf.config.channels, sf.config.hidden], [[16, 32], 64]);
    // conv1 keeps the 16 filters of largest L1 norm, in the teacher's order.
    const k1 = tf.weights.get('conv1.weight')!;
    const norms = Float64Array.from({ length: 32 }, (_, c) => k1.data.subarray(c * 9, (c + 1) * 9).reduce((a, v) => a + Math.abs(v), 0));
    const keep = topK(norms, 16);
    const got = sf.weights.get('conv1.weight')!.data;
    keep.forEach((c, i) => assert.deepEqual(Array.from(got.subarray(i * 9, (i + 1) * 9)), Array.from(k1.data.subarray(c * 9, (c + 1) * 9))));
    const acc = await evaluateOn(s.model, 'mnist', 500);
    assert.ok(acc > 0.3, `a teacher-initialized half-width CNN should beat chance before training, got ${acc}`);

    const spam = await buildStudent(await loadModel(SPAM), 'drop-layers+width=0.5');
    const st = readFamily(spam.model);
    assert.deepEqual(st.kind === 'transformer' && [st.config.layers, st.config.hidden, st.config.heads, st.config.ffn], [1, 32, 4, 64]);
    assert.ok((await evaluateOn(spam.model, 'spam', 64)) >= 0);
  });

  test('zoo specs build the teacher\'s family with the given sizes; a transformer inherits the vocabulary', async () => {
    const s = await buildStudent(await loadModel(SPAM), 'transformer-tiny:layers=1,hidden=32,ffn=64');
    const f = readFamily(s.model);
    assert.deepEqual(f.kind === 'transformer' && [f.config.layers, f.config.hidden, f.config.vocabSize, f.config.maxLength], [1, 32, 8192, 512]);
    assert.ok(s.model.extras.metadataProps?.some(([k]) => k === 'frugal.tokenizer'));
    const c = await buildStudent(await loadModel(MNIST), 'cnn:channels=8/16,hidden=32');
    const cf = readFamily(c.model);
    assert.deepEqual(cf.kind === 'cnn' && [cf.config.channels, cf.config.hidden], [[8, 16], 32]);
  });
});

async function evaluateOn(model: Model, dataset: string, testLimit: number): Promise<number> {
  const { evaluateModel } = await import('../../src/evaluation/index.js');
  return (await evaluateModel(model, dataset, { limit: testLimit })).accuracy;
}

describe('bad input: one clear error each', () => {
  test('temperature, alpha, widths, class counts, untrainable students, unknown specs', async () => {
    const teacher = await loadModel(MNIST);
    const student = buildZooModel('cnn', { channels: [4, 8] });
    const run = (o: Record<string, unknown>) => distillModel({ dataset: 'mnist', epochs: 1, limit: 64, teacher, student, ...o });
    await assert.rejects(run({ temperature: 0 }), { code: 'E_USAGE', message: /temperature must be a positive number/ });
    await assert.rejects(run({ alpha: 1.5 }), { code: 'E_USAGE', message: /alpha must be in \[0, 1\]/ });
    await assert.rejects(run({ student: buildZooModel('cnn', { classes: 5 }) }), { code: 'E_USAGE', message: /teacher predicts 10 classes and the student 5/ });
    await assert.rejects(buildStudent(teacher, 'width=0.01'), { code: 'E_USAGE', message: /rounds conv1's channels \(32\) to zero/ });
    await assert.rejects(buildStudent(teacher, 'width=2'), { code: 'E_USAGE', message: /in \(0, 1\]/ });
    await assert.rejects(buildStudent(teacher, 'drop-layers'), { code: 'E_UNSUPPORTED', message: /layer dropping applies to transformer/ });
    await assert.rejects(buildStudent(teacher, 'no-such-thing'), { code: 'E_USAGE', message: /not a zoo spec/ });
    await assert.rejects(buildStudent(teacher, 'cnn:channels'), { code: 'E_USAGE', message: /not key=value/ });
    const half = buildZooModel('cnn', { channels: [4, 8] });
    convertToFloat16(half, { to: 'float16', provider: 'cpu' });
    await assert.rejects(run({ student: half }), { code: 'E_UNSUPPORTED', message: /float16/ });
  });
});
