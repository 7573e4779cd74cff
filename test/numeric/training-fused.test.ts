/**
 * The in-graph optimizer (optimizers/in-graph.ts) against the JS reference optimizers: the same weights,
 * gradients and learning rates through both, several steps, compared after every step; clipping in the
 * graph against clipGradNorm; and the trainer's fused path against its default (WebAssembly SIMD) path, with resume;
 * and the UpdateBackend contract: a run whose step is not taken leaves weights and state untouched.
 * Also the fast gradient paths added with it: Conv's weight gradient as Gemms over strided slices (both
 * the per-tap and the stacked-patches forms) and MaxPool over tiling windows, against finite differences
 * (tolerances as in autodiff-nn.test.ts), and that path's tie rule against its exact expected value.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { createSession } from '../../src/runtime/index.js';
import { differentiate } from '../../src/training/autodiff/engine.js';
import { appendOptimizerUpdate, FusedState, fusedScalars } from '../../src/training/optimizers/in-graph.js';
import { buildTrainingModel, clipGradNorm, createOptimizer, createUpdateBackend, initializerArrays, type OptimizerConfig, trainModel } from '../../src/training/index.js';
import { createRng } from '../../src/util/rng.js';
import { buildZooModel } from '../../src/zoo/index.js';
import { gradCheck, type GradCheckOptions } from '../helpers/gradcheck.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-fused-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Parameter shapes: a matrix (decayed), a bias and a 4-D kernel (decayed). */
const SHAPES = [[6, 5], [5], [3, 2, 2, 2]];

/** Max over elements of |a − b| / max(|b|, 1): float32 rounding of O(1) weights is ~6e-8. */
function maxRelErr(a: Float32Array, b: Float32Array): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), 1));
  return e;
}

/**
 * Runs `steps` updates of the graph optimizer and of the JS one on the same random gradients (a fresh
 * draw each step, some large enough to trigger clipping) and asserts weights and state agree after each.
 */
async function compare(cfg: OptimizerConfig, steps: number, clipNorm?: number): Promise<number> {
  const b = new GraphBuilder('update');
  const params = SHAPES.map((dims, i) => ({ weight: b.input(`w${i}`, DataType.FLOAT, dims), grad: b.input(`g${i}`, DataType.FLOAT, dims), dims, decay: dims.length >= 2 }));
  const binding = appendOptimizerUpdate(b.graph, params, cfg, clipNorm);
  const session = await createSession(b.build({ opsetImports: { '': 17 } }), { intraOpThreads: 1 });
  const rng = createRng(3);
  const sizes = SHAPES.map((d) => d.reduce((x, y) => x * y, 1));
  const jsWeights = sizes.map((n) => Float32Array.from({ length: n }, () => rng.normal()));
  const js = createOptimizer(sizes.map((size, i) => ({ name: `w${i}`, size, decay: SHAPES[i]!.length >= 2 })), cfg);
  const state = new FusedState(binding, new Map(jsWeights.map((w, i) => [`w${i}`, w.slice()])));
  const w0Initial = state.weight('w0').slice();
  let worst = 0;
  try {
    for (let t = 1; t <= steps; t++) {
      const scale = t % 2 ? 5 : 0.01; // odd steps clip (when clipping), even steps don't
      const grads = sizes.map((n) => Float32Array.from({ length: n }, () => scale * rng.normal()));
      const lr = 0.01 * (1 + t / 10);
      const feeds: Record<string, ort.Tensor> = {};
      params.forEach((p, i) => {
        feeds[p.weight.name] = new ort.Tensor('float32', state.weight(p.weight.name), p.dims);
        feeds[p.grad.name] = new ort.Tensor('float32', grads[i]!.slice(), p.dims);
        for (const s of Object.values(binding.params[i]!.slots)) feeds[s.input] = new ort.Tensor('float32', state.front.get(s.input)!, p.dims);
      });
      const scalars = fusedScalars(binding, state.step + 1, lr);
      binding.scalars.forEach((n, i) => (feeds[n] = new ort.Tensor('float32', Float32Array.of(scalars[i]!), [])));
      const fetches: Record<string, ort.OnnxValue | null> = {};
      for (const [name, buf, w] of state.outputTargets()) fetches[name] = new ort.Tensor('float32', buf, params.find((p) => p.weight.name === w)!.dims);
      await session.ort.run(feeds, fetches);
      state.swap();

      if (clipNorm !== undefined) clipGradNorm(grads, clipNorm);
      js.step(jsWeights, grads, lr);
      const jsState = js.state();
      params.forEach((p, i) => {
        worst = Math.max(worst, maxRelErr(state.weight(p.weight.name), jsWeights[i]!));
        for (const [slot, arrays] of Object.entries(jsState.slots)) worst = Math.max(worst, maxRelErr(state.front.get(binding.params[i]!.slots[slot]!.input)!, arrays[i]!));
      });
      assert.ok(worst < 1e-6, `${cfg.kind} step ${t}: max relative difference ${worst}`);
    }
    // The state round-trips through the JS optimizer's format.
    assert.equal(state.state().step, steps);
    js.load(state.state());
    assert.equal(js.stepCount, steps);
  } finally {
    await session.release();
  }
  // The weights moved from where they started (a comparison of unchanged weights would prove nothing).
  assert.ok(maxRelErr(state.weight('w0'), w0Initial) > 1e-3, 'the fused updates changed the weights');
  return worst;
}

describe('in-graph optimizer vs the JS reference', () => {
  test('AdamW (weight decay, bias correction) agrees over 6 steps', async () => {
    await compare({ kind: 'adamw', weightDecay: 0.1 }, 6);
  });
  test('AdamW with global-norm clipping in the graph agrees over 6 steps', async () => {
    await compare({ kind: 'adamw' }, 6, 1.5);
  });
  test('SGD with momentum and weight decay agrees over 6 steps', async () => {
    await compare({ kind: 'sgd', momentum: 0.9, weightDecay: 0.05 }, 6);
  });
  test('SGD Nesterov, and SGD without momentum, with clipping', async () => {
    await compare({ kind: 'sgd', momentum: 0.8, nesterov: true }, 5, 2);
    await compare({ kind: 'sgd', momentum: 0 }, 5, 2);
  });
});

describe('trainer with the optimizer in the graph', () => {
  const base = { dataset: 'mnist', limit: 512, batchSize: 32, seed: 4, intraOpThreads: 1, evaluate: false } as const;

  test('fused and default (SIMD) paths train to the same weights (float rounding apart)', async () => {
    const model = buildZooModel('mlp', { hidden: [24], seed: 1 });
    for (const optimizer of ['adamw', 'sgd'] as const) {
      const fused = await trainModel({ ...base, model, steps: 5, optimizer, clipNorm: 1, fusedOptimizer: true });
      const js = await trainModel({ ...base, model, steps: 5, optimizer, clipNorm: 1, fusedOptimizer: false });
      assert.ok(Math.abs(fused.finalLoss - js.finalLoss) < 1e-4 * Math.max(1, js.finalLoss), `${optimizer}: loss ${fused.finalLoss} vs ${js.finalLoss}`);
      for (const name of js.trainable) {
        const a = fused.model.graph.values.get(name)!.initializer!.toArray() as Float32Array;
        const b = js.model.graph.values.get(name)!.initializer!.toArray() as Float32Array;
        const before = model.graph.values.get(name)!.initializer!.toArray() as Float32Array;
        // Compared with the size of the update, so that a wrong update cannot hide behind large weights.
        let diff = 0;
        let moved = 0;
        for (let i = 0; i < a.length; i++) {
          diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
          moved = Math.max(moved, Math.abs(b[i]! - before[i]!));
        }
        assert.ok(moved > 0, `${optimizer}: '${name}' did not change`);
        assert.ok(diff < 1e-3 * moved, `${optimizer}: '${name}' differs by ${diff} (update size ${moved})`);
      }
    }
  });

  test('a fused run killed mid-epoch and resumed ends with bit-identical weights; accumulation falls back to the default path', async () => {
    const model = buildZooModel('mlp', { hidden: [16] });
    const opts = { ...base, model, epochs: 1, schedule: 'cosine' as const, warmupSteps: 2, clipNorm: 0.5, fusedOptimizer: true };
    const straight = await trainModel(opts);
    const ckpt = path.join(dir, 'fused.ckpt');
    const killed = await trainModel({ ...opts, checkpoint: ckpt, checkpointEvery: 4, stopAfterSteps: 10 });
    assert.equal(killed.stopped, true);
    const resumed = await trainModel({ ...opts, checkpoint: ckpt, checkpointEvery: 4, resume: true });
    assert.deepEqual(resumed.resumedFrom, { epoch: 0, step: 8 });
    for (const name of straight.trainable) {
      const a = straight.model.graph.values.get(name)!.initializer!.bytes();
      const b = resumed.model.graph.values.get(name)!.initializer!.bytes();
      assert.ok(Buffer.from(a).equals(Buffer.from(b)), `weight '${name}' differs after resume`);
    }
    // Gradient accumulation falls back to the default (SIMD) update: asking for the fused path changes nothing.
    const acc = await trainModel({ ...base, model, epochs: 2, accumulate: 2, lr: 3e-3, fusedOptimizer: true });
    const accJs = await trainModel({ ...base, model, epochs: 2, accumulate: 2, lr: 3e-3, fusedOptimizer: false });
    for (const name of acc.trainable) {
      const a = acc.model.graph.values.get(name)!.initializer!.bytes();
      const b = accJs.model.graph.values.get(name)!.initializer!.bytes();
      assert.ok(Buffer.from(a).equals(Buffer.from(b)), `accumulated run: weight '${name}' differs from the JS path`);
    }
    assert.ok(acc.epochs[1]!.loss < acc.epochs[0]!.loss, `accumulated loss ${acc.epochs.map((e) => e.loss)}`);
  });
});

describe('UpdateBackend (optimizers/backend.ts)', () => {
  /** A small MLP's training graph, its backend, and a session over it; `fused` puts the update in the graph. */
  async function setup(fused: boolean) {
    const model = buildZooModel('mlp', { hidden: [8], seed: 5 });
    const config: OptimizerConfig = { kind: 'adamw', weightDecay: 0.1 };
    const { model: graph, binding } = buildTrainingModel(model, { loss: { kind: 'cross-entropy' }, ...(fused ? { fusedOptimizer: { config, clipNorm: 0.5 } } : {}) });
    const names = binding.weights.map((w) => w.name);
    const backend = createUpdateBackend({ weights: binding.weights, initial: initializerArrays(model, names), config, clipNorm: 0.5, ...(binding.fused ? { fused: binding.fused } : {}) });
    const session = await createSession(graph, { intraOpThreads: 1 });
    const rng = createRng(9);
    const input = Float32Array.from({ length: 4 * 784 }, () => rng.next());
    const target = Float32Array.from({ length: 4 * 10 }, (_, i) => (i % 10 === i % 7 ? 1 : 0));
    const feeds = (): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', input, [4, 784]), [binding.lossInputs[0]!.name]: new ort.Tensor('float32', target, [4, 10]) };
      for (const w of binding.weights) f[w.name] = new ort.Tensor('float32', backend.weights.get(w.name)!, w.dims);
      return f;
    };
    /** Weights and optimizer state, copied. */
    const snapshot = () => ({ weights: names.map((n) => backend.weights.get(n)!.slice()), state: backend.state() });
    return { backend, session, feeds, snapshot, loss: binding.loss };
  }

  test('each backend: a run without update changes neither weights nor state; the next step is as if it never ran', async () => {
    for (const fused of [false, true]) {
      const skipped = await setup(fused);
      const straight = await setup(fused);
      assert.equal(skipped.backend.kind, fused ? 'in-graph' : 'simd');
      try {
        for (const s of [skipped, straight]) {
          const r = await s.backend.run(s.session, s.feeds(), [s.loss], 1e-2);
          s.backend.update(r.gradients, 1e-2);
        }
        const before = skipped.snapshot();
        await skipped.backend.run(skipped.session, skipped.feeds(), [skipped.loss], 1e-2); // a skipped step
        assert.deepEqual(skipped.snapshot(), before, `${skipped.backend.kind}: a run alone changed the weights or the state`);
        for (const s of [skipped, straight]) {
          const r = await s.backend.run(s.session, s.feeds(), [s.loss], 1e-2);
          s.backend.update(r.gradients, 1e-2);
        }
        const [a, b] = [skipped.snapshot(), straight.snapshot()];
        assert.deepEqual(a, b, `${skipped.backend.kind}: the step after a skipped one differs`);
        assert.equal(a.state.step, 2);
        assert.notDeepEqual(a.weights, before.weights, 'the weights moved');
      } finally {
        await skipped.session.release();
        await straight.session.release();
      }
    }
  });

  test('in the graph, update commits a run: without one it is an internal error', async () => {
    const s = await setup(true);
    try {
      assert.throws(() => s.backend.update([], 1e-2), (e: Error & { code?: string }) => e.code === 'E_INTERNAL');
    } finally {
      await s.session.release();
    }
  });
});

describe('fast gradient paths', () => {
  const F32 = { dtype: 'float32' as const, rtol: 2e-3, atol: 2e-3 };
  const check = async (opts: GradCheckOptions) => assert.ok((await gradCheck(opts)).checked > 0);

  test('Conv weight gradient, per-tap Gemms (C ≥ 8): stride 1 pads 1 with bias, and stride 2 dilation 2 uneven pads', async () => {
    await check({
      ...F32,
      inputs: [{ name: 'x', shape: [2, 8, 5, 5] }, { name: 'w', shape: [3, 8, 3, 3] }, { name: 'b', shape: [3] }],
      build: (b, [x, w, bias]) => b.op('Conv', [x!, w!, bias!], { pads: [1, 1, 1, 1] }),
    });
    await check({
      ...F32,
      inputs: [{ name: 'x', shape: [1, 8, 7, 8] }, { name: 'w', shape: [2, 8, 2, 3] }],
      build: (b, [x, w]) => b.op('Conv', [x!, w!], { strides: [2, 2], dilations: [2, 2], pads: [1, 0, 2, 1] }),
    });
  });

  test('Conv weight gradient, stacked patches (C < 8): 3-D with stride 2 and SAME_LOWER', async () => {
    await check({
      ...F32,
      inputs: [{ name: 'x', shape: [2, 2, 4, 5, 3] }, { name: 'w', shape: [2, 2, 2, 3, 2] }],
      build: (b, [x, w]) => b.op('Conv', [x!, w!], { strides: [2, 2, 1], auto_pad: 'SAME_LOWER' }),
    });
  });

  test('MaxPool over tiling windows: square 2-D (SpaceToDepth form) and 2×3 (reshape form)', async () => {
    await check({ inputs: [{ name: 'x', shape: [2, 3, 4, 6] }], build: (b, [x]) => b.op('MaxPool', [x!], { kernel_shape: [2, 2], strides: [2, 2] }) });
    await check({ ...F32, inputs: [{ name: 'x', shape: [2, 3, 4, 6] }], build: (b, [x]) => b.op('MaxPool', [x!], { kernel_shape: [2, 2], strides: [2, 2] }) });
    await check({ inputs: [{ name: 'x', shape: [2, 2, 4, 9] }], build: (b, [x]) => b.op('MaxPool', [x!], { kernel_shape: [2, 3], strides: [2, 3] }) });
  });

  test('MaxPool over tiling windows: tied maxima share the gradient equally', async () => {
    for (const kernel of [[2, 2], [2, 3]]) {
      const b = new GraphBuilder('ties');
      const x = b.input('x', DataType.FLOAT, [1, 1, 2, 6]);
      const r = b.input('r', DataType.FLOAT, [1, 1, 1, 6 / kernel[1]!]);
      const loss = b.op('ReduceSum', [b.op('Mul', [b.op('MaxPool', [x], { kernel_shape: kernel, strides: kernel }), r])], { keepdims: 0 });
      b.output(loss, 'loss', DataType.FLOAT, []);
      const m = b.build({ opsetImports: { '': 17 } });
      const { grads } = differentiate(m, { loss, wrt: [x] });
      m.graph.outputs.push(grads[0]!);
      const s = await createSession(m);
      // Rows [1 1 0 2 2 -1; 0 1 3 2 2 0].
      const xs = [1, 1, 0, 2, 2, -1, 0, 1, 3, 2, 2, 0];
      const rs = kernel[1] === 2 ? [6, 4, 10] : [6, 9];
      const out = await s.run({ x: Tensor.fromArray(DataType.FLOAT, [1, 1, 2, 6], Float32Array.from(xs)), r: Tensor.fromArray(DataType.FLOAT, [1, 1, 1, rs.length], Float32Array.from(rs)) });
      await s.release();
      const dx = Array.from(out[grads[0]!.name]!.toArray() as Float32Array);
      // Expected: each window's dY split equally among the elements equal to its maximum.
      const want = new Array<number>(12).fill(0);
      for (let wj = 0; wj < rs.length; wj++) {
        const cells = [0, 1].flatMap((row) => Array.from({ length: kernel[1]! }, (_, c) => row * 6 + wj * kernel[1]! + c));
        const max = Math.max(...cells.map((i) => xs[i]!));
        const tied = cells.filter((i) => xs[i] === max);
        for (const i of tied) want[i] = rs[wj]! / tied.length;
      }
      assert.ok(want.some((v, i) => v > 0 && v < rs[Math.floor((i % 6) / kernel[1]!)]!), 'the input has ties');
      dx.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `kernel ${kernel}: dX[${i}] = ${v}, expected ${want[i]}`));
    }
  });
});
