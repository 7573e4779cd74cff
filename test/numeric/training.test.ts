/**
 * Training: losses against plain-JS formulas and finite differences, optimizer steps against
 * hand-computed updates, schedules, clipping, accumulation, checkpoints, real MNIST training, and
 * resume-equals-uninterrupted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { createSession } from '../../src/runtime/index.js';
import {
  AdamW,
  appendLoss,
  buildTrainingModel,
  clipGradNorm,
  decodeCheckpoint,
  encodeCheckpoint,
  GradientAccumulator,
  initializerArrays,
  learningRateAt,
  loadCheckpoint,
  type LossSpec,
  Sgd,
  targetDistribution,
  trainModel,
} from '../../src/training/index.js';
import { trainedOn } from '../../src/data/feed.js';
import { evaluateModel } from '../../src/evaluation/index.js';
import { createRng } from '../../src/util/rng.js';
import { buildZooModel } from '../../src/zoo/index.js';
import { gradCheck } from '../helpers/gradcheck.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const B = 4;
const C = 5;
const rng = createRng(11);
const logitsData = Array.from({ length: B * C }, () => 3 * rng.normal());
const teacherData = Array.from({ length: B * C }, () => 3 * rng.normal());
const labels = [0, 3, 4, 1];

/** Runs a loss graph in ORT on the fixed logits (and teacher logits / labels). */
async function lossInOrt(spec: LossSpec, smoothing = 0): Promise<number> {
  const b = new GraphBuilder('loss');
  const logits = b.input('logits', DataType.FLOAT, ['batch', C]);
  const built = appendLoss(b.graph, logits, spec);
  b.output(built.loss, 'loss_out', DataType.FLOAT, []);
  const s = await createSession(b.build({ opsetImports: { '': 17 } }));
  const feeds: Record<string, Tensor> = { logits: Tensor.fromArray(DataType.FLOAT, [B, C], Float32Array.from(logitsData)) };
  for (const i of built.inputs) {
    const data = i.role === 'teacher' ? Float32Array.from(teacherData) : spec.kind === 'mse' ? Float32Array.from(teacherData) : targetDistribution(labels, C, smoothing);
    feeds[i.name] = Tensor.fromArray(DataType.FLOAT, [B, C], data);
  }
  const out = await s.run(feeds);
  await s.release();
  return (out.loss_out!.toArray() as Float32Array)[0]!;
}

function logSoftmaxJs(row: number[], T = 1): number[] {
  const z = row.map((x) => x / T);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
  return z.map((x) => x - lse);
}
const rows = (a: number[]) => Array.from({ length: B }, (_, i) => a.slice(i * C, (i + 1) * C));
function ceJs(smoothing: number): number {
  let s = 0;
  rows(logitsData).forEach((r, i) => {
    const lp = logSoftmaxJs(r);
    lp.forEach((l, c) => (s -= (c === labels[i] ? 1 - smoothing + smoothing / C : smoothing / C) * l));
  });
  return s / B;
}
function klJs(T: number): number {
  let s = 0;
  const tr = rows(teacherData);
  rows(logitsData).forEach((r, i) => {
    const lps = logSoftmaxJs(r, T);
    const lpt = logSoftmaxJs(tr[i]!, T);
    lpt.forEach((l, c) => (s += Math.exp(l) * (l - lps[c]!)));
  });
  return (T * T * s) / B;
}

describe('losses', () => {
  test('cross-entropy (with and without label smoothing) matches the formula', async () => {
    const got: number[] = [];
    for (const eps of [0, 0.1]) {
      got.push(await lossInOrt({ kind: 'cross-entropy', labelSmoothing: eps }, eps));
      assert.ok(Math.abs(got.at(-1)! - ceJs(eps)) < 1e-5 * Math.max(1, ceJs(eps)), `ε=${eps}: ${got.at(-1)} vs ${ceJs(eps)}`);
    }
    // The smoothed target (targetDistribution, as the trainer builds it) changes the loss.
    assert.ok(Math.abs(got[0]! - got[1]!) > 1e-3, `losses ${got}`);
  });

  test('MSE matches the formula', async () => {
    const want = logitsData.reduce((a, x, i) => a + (x - teacherData[i]!) ** 2, 0) / (B * C);
    const got = await lossInOrt({ kind: 'mse' });
    assert.ok(Math.abs(got - want) < 1e-5 * want, `${got} vs ${want}`);
  });

  test('distillation: T²·KL at temperature T, mixed with hard-label CE by alpha', async () => {
    for (const T of [1, 4]) {
      const got = await lossInOrt({ kind: 'distillation', temperature: T });
      assert.ok(Math.abs(got - klJs(T)) < 1e-4 * Math.max(1, klJs(T)), `T=${T}: ${got} vs ${klJs(T)}`);
    }
    const mixed = await lossInOrt({ kind: 'distillation', temperature: 2, alpha: 0.3 });
    const want = 0.7 * klJs(2) + 0.3 * ceJs(0);
    assert.ok(Math.abs(mixed - want) < 1e-4 * want, `${mixed} vs ${want}`);
  });

  test('target distributions: rows sum to 1; bad labels are E_DATA', () => {
    const t = targetDistribution([2, 0], 4, 0.2);
    assert.deepEqual(Array.from(t, (x) => Math.round(x * 1e6) / 1e6), [0.05, 0.05, 0.85, 0.05, 0.85, 0.05, 0.05, 0.05]);
    assert.throws(() => targetDistribution([4], 4), { code: 'E_DATA' });
  });

  // float32 finite differences (the losses are built in float32): ε = 1e-2, tolerances 1e-2 (gradcheck.ts).
  const specs: Array<[string, LossSpec]> = [
    ['cross-entropy with smoothing', { kind: 'cross-entropy', labelSmoothing: 0.1 }],
    ['mse', { kind: 'mse' }],
    ['distillation T=3 alpha=0.4', { kind: 'distillation', temperature: 3, alpha: 0.4 }],
  ];
  for (const [name, spec] of specs) {
    test(`gradient of ${name} matches finite differences`, async () => {
      const target = targetDistribution([1, 0, 2], 3, 0.1);
      const r = await gradCheck({
        dtype: 'float32',
        inputs: [
          { name: 'logits', shape: [3, 3] },
          { name: 'target', shape: [3, 3], data: Array.from(target), differentiable: false },
          { name: 'teacher', shape: [3, 3], differentiable: false },
        ],
        build: (_b, [logits, target, teacher]) => {
          const g = logits!.graph;
          return appendLoss(g, logits!, spec, { target: target!, teacher: teacher! }).loss;
        },
      });
      assert.equal(r.checked, 9);
    });
  }
});

describe('optimizers, schedules, clipping, accumulation', () => {
  const info = [{ name: 'w', size: 3, decay: true }, { name: 'b', size: 1, decay: false }];

  test('SGD with momentum and weight decay: two hand-computed steps', () => {
    const p = [Float32Array.of(1, -2, 0.5), Float32Array.of(0.25)];
    const g = [Float32Array.of(0.1, 0.2, -0.3), Float32Array.of(1)];
    const o = new Sgd(info, { momentum: 0.9, weightDecay: 0.1 });
    o.step(p, g, 0.5);
    // step 1: d = g + 0.1·p (w only); buf = d; p -= 0.5·buf
    const d1 = [0.1 + 0.1, 0.2 - 0.2, -0.3 + 0.05];
    const w1 = [1 - 0.5 * d1[0]!, -2 - 0.5 * d1[1]!, 0.5 - 0.5 * d1[2]!];
    assert.deepEqual(Array.from(p[0]!), w1.map(Math.fround));
    assert.equal(p[1]![0], Math.fround(0.25 - 0.5));
    o.step(p, g, 0.5);
    const d2 = [0.1, 0.2, -0.3].map((x, i) => x + 0.1 * Math.fround(w1[i]!));
    const buf2 = d2.map((x, i) => 0.9 * Math.fround(d1[i]!) + x);
    const w2 = w1.map((x, i) => Math.fround(x) - 0.5 * Math.fround(buf2[i]!));
    Array.from(p[0]!).forEach((x, i) => assert.ok(Math.abs(x - w2[i]!) < 1e-6, `${x} vs ${w2[i]}`));
  });

  test('AdamW: two hand-computed steps (bias correction, decoupled decay)', () => {
    const p = [Float32Array.of(1, -2, 0.5), Float32Array.of(0.25)];
    const g = [Float32Array.of(0.1, 0.2, -0.3), Float32Array.of(1)];
    const o = new AdamW(info, { weightDecay: 0.1 });
    const lr = 0.01;
    const m = [0, 0, 0, 0];
    const v = [0, 0, 0, 0];
    const want = [1, -2, 0.5, 0.25];
    const gs = [0.1, 0.2, -0.3, 1];
    for (let t = 1; t <= 2; t++) {
      o.step(p, g, lr);
      for (let i = 0; i < 4; i++) {
        m[i] = 0.9 * m[i]! + 0.1 * gs[i]!;
        v[i] = 0.999 * v[i]! + 0.001 * gs[i]! ** 2;
        const mh = m[i]! / (1 - 0.9 ** t);
        const vh = v[i]! / (1 - 0.999 ** t);
        want[i] = want[i]! * (1 - lr * (i < 3 ? 0.1 : 0)) - (lr * mh) / (Math.sqrt(vh) + 1e-8);
      }
    }
    const got = [...p[0]!, ...p[1]!];
    got.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-6, `param ${i}: ${x} vs ${want[i]}`));
    // A state round trip continues identically.
    const o2 = new AdamW(info, { weightDecay: 0.1 });
    o2.load(o.state());
    const p2 = p.map((a) => a.slice());
    o.step(p, g, lr);
    o2.step(p2, g, lr);
    assert.deepEqual(p2, p);
  });

  test('schedules: warmup, cosine, linear, constant', () => {
    const cos = { kind: 'cosine' as const, baseLr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 };
    assert.equal(learningRateAt(cos, 0), 0.1);
    assert.equal(learningRateAt(cos, 9), 1);
    assert.equal(learningRateAt(cos, 10), 1);
    assert.ok(Math.abs(learningRateAt(cos, 60) - 0.55) < 1e-12);
    assert.ok(Math.abs(learningRateAt(cos, 110) - 0.1) < 1e-12);
    const lin = { kind: 'linear' as const, baseLr: 2, warmupSteps: 0, totalSteps: 100 };
    assert.equal(learningRateAt(lin, 25), 1.5);
    assert.equal(learningRateAt(lin, 200), 0);
    assert.equal(learningRateAt({ kind: 'constant', baseLr: 0.3 }, 1e6), 0.3);
  });

  test('clipping by global norm', () => {
    const g = [Float32Array.of(3, 0), Float32Array.of(4)];
    assert.equal(clipGradNorm(g, 1), 5);
    assert.deepEqual(Array.from(g[0]!), [0.6, 0].map(Math.fround));
    assert.equal(g[1]![0], Math.fround(0.8));
    const small = [Float32Array.of(0.1)];
    clipGradNorm(small, 1);
    assert.equal(small[0]![0], Math.fround(0.1));
  });

  test('accumulating 2 micro-batches gives the gradient of the double batch', async () => {
    const model = buildZooModel('mlp', { hidden: [16], seed: 2 });
    const { model: tm, binding } = buildTrainingModel(model, { loss: { kind: 'cross-entropy', labelSmoothing: 0.1 } });
    const s = await createSession(tm, { intraOpThreads: 1 });
    const w = initializerArrays(model, binding.weights.map((x) => x.name));
    const r = createRng(5);
    const x = Float32Array.from({ length: 16 * 784 }, () => r.next());
    const lab = Array.from({ length: 16 }, () => r.int(10));
    const grads = async (from: number, to: number) => {
      const n = to - from;
      const feeds: Record<string, ort.Tensor> = {
        input: new ort.Tensor('float32', x.slice(from * 784, to * 784), [n, 784]),
        'loss.target': new ort.Tensor('float32', targetDistribution(lab.slice(from, to), 10, 0.1), [n, 10]),
      };
      for (const b of binding.weights) feeds[b.name] = new ort.Tensor('float32', w.get(b.name)!, b.dims);
      const out = await s.runOrt(feeds);
      return binding.weights.map((b) => (out[b.gradient] as ort.Tensor).data as Float32Array);
    };
    const acc = new GradientAccumulator();
    acc.add(await grads(0, 8), 8);
    acc.add(await grads(8, 16), 8);
    const accumulated = acc.take();
    const whole = await grads(0, 16);
    await s.release();
    let maxErr = 0;
    let maxAbs = 0;
    whole.forEach((g, k) => g.forEach((v, j) => ((maxErr = Math.max(maxErr, Math.abs(v - accumulated[k]![j]!))), (maxAbs = Math.max(maxAbs, Math.abs(v))))));
    assert.ok(maxAbs > 1e-3, 'non-trivial gradients');
    assert.ok(maxErr < 1e-5 * Math.max(1, maxAbs), `max |diff| ${maxErr}`);
  });
});

describe('checkpoints', () => {
  test('encode/decode round trip; corrupt files are E_DECODE', () => {
    const ck = {
      progress: { epoch: 1, batchInEpoch: 3, step: 20, samples: 999, epochLossSum: 1.5, epochBatches: 3, history: [{ epoch: 0, loss: 0.7, accuracy: 0.9 }] },
      fingerprint: 'fp',
      weights: new Map([['w', Float32Array.of(1, 2, 3)], ['b', Float32Array.of(-0.5)]]),
      stats: new Map([['bn.mean', Float32Array.of(0.25)]]),
      optimizer: { kind: 'adamw' as const, step: 20, hyper: { beta1: 0.9 }, slots: { m: [Float32Array.of(4, 5, 6), Float32Array.of(7)], v: [Float32Array.of(8, 9, 10), Float32Array.of(11)] } },
    };
    const back = decodeCheckpoint(encodeCheckpoint(ck));
    assert.deepEqual(back, ck);
    const bytes = encodeCheckpoint(ck);
    assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4)), { code: 'E_DECODE' });
    assert.throws(() => decodeCheckpoint(new TextEncoder().encode('not a checkpoint at all')), { code: 'E_DECODE' });
  });

  test('a missing checkpoint is E_IO', async () => {
    writeFileSync(path.join(dir, 'junk.ckpt'), 'junk');
    await assert.rejects(loadCheckpoint(path.join(dir, 'nope.ckpt')), { code: 'E_IO' });
    await assert.rejects(loadCheckpoint(path.join(dir, 'junk.ckpt')), { code: 'E_DECODE' });
  });
});

describe('training on real MNIST', () => {
  test('an MLP trained on 2,000 images for 2 epochs beats 85% test accuracy', async () => {
    const r = await trainModel({ model: buildZooModel('mlp'), dataset: 'mnist', limit: 2000, epochs: 2, batchSize: 32, seed: 0, intraOpThreads: 2 });
    assert.equal(r.epochs.length, 2);
    assert.ok(r.epochs[1]!.loss < r.epochs[0]!.loss, 'loss falls');
    assert.ok(r.finalAccuracy! > 0.85, `test accuracy ${r.finalAccuracy}`);
    // The written-back model scores the same outside the trainer.
    const e = await evaluateModel(r.model, 'mnist');
    assert.equal(e.count, 2000);
    assert.equal(e.accuracy, r.finalAccuracy);
    // It records the training-split prefix it saw (the search's validation check reads it).
    assert.deepEqual(trainedOn(r.model), { mnist: 2000 });
  });

  test('a run killed mid-epoch and resumed from its checkpoint ends with bit-identical weights', async () => {
    const base = { dataset: 'mnist', limit: 600, epochs: 2, batchSize: 32, seed: 7, intraOpThreads: 1, evaluate: false, schedule: 'cosine' as const, warmupSteps: 3 };
    const model = buildZooModel('mlp', { hidden: [32] });
    const straight = await trainModel({ ...base, model });
    const ckpt = path.join(dir, 'resume.ckpt');
    // 19 steps per epoch: checkpoints at 5, 10, 15, 19 (epoch end), 20, 25; "killed" after step 27.
    const killed = await trainModel({ ...base, model, checkpoint: ckpt, checkpointEvery: 5, stopAfterSteps: 27 });
    assert.equal(killed.stopped, true);
    const resumed = await trainModel({ ...base, model, checkpoint: ckpt, checkpointEvery: 5, resume: true });
    assert.deepEqual(resumed.resumedFrom, { epoch: 1, step: 25 });
    assert.equal(resumed.steps, straight.steps);
    for (const name of straight.trainable) {
      const a = straight.model.graph.values.get(name)!.initializer!.bytes();
      const b = resumed.model.graph.values.get(name)!.initializer!.bytes();
      assert.ok(Buffer.from(a).equals(Buffer.from(b)), `weight '${name}' differs after resume`);
    }
    // And the run actually changed the weights.
    const init = model.graph.values.get('fc1.weight')!.initializer!.bytes();
    assert.ok(!Buffer.from(init).equals(Buffer.from(straight.model.graph.values.get('fc1.weight')!.initializer!.bytes())));
  });
});
