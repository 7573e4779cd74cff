/**
 * The WebAssembly SIMD optimizers against the JS reference optimizers: same updates to float32
 * rounding over several steps (AdamW with and without decay, SGD plain, with momentum, Nesterov and
 * weight decay), sizes that are not a multiple of the 4-lane width, zero-copy views, and optimizer
 * states that move between the two (checkpoints are interchangeable).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOptimizer, type OptimizerConfig, type ParamInfo, SimdOptimizer } from '../../src/training/index.js';
import { assemble } from '../../src/training/optimizers/simd-kernels.js';
import { createRng } from '../../src/util/rng.js';

const PARAMS: ParamInfo[] = [
  { name: 'w', size: 1027, decay: true }, // 256 lanes and 3 left over
  { name: 'b', size: 5, decay: false },
  { name: 'one', size: 1, decay: true },
];

function randomArrays(seed: number, scale: number): Float32Array[] {
  const rng = createRng(seed);
  return PARAMS.map((p) => Float32Array.from({ length: p.size }, () => rng.normal() * scale));
}

/** Largest |a − b| relative to max(1, |b|) over all arrays. */
function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((x, i) => x.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i]![j]!) / Math.max(1, Math.abs(b[i]![j]!))))));
  return m;
}

const CONFIGS: OptimizerConfig[] = [
  { kind: 'adamw' },
  { kind: 'adamw', weightDecay: 0, beta1: 0.8, beta2: 0.99, eps: 1e-6 },
  { kind: 'sgd', momentum: 0 },
  { kind: 'sgd', momentum: 0.9, weightDecay: 1e-2 },
  { kind: 'sgd', momentum: 0.5, nesterov: true, weightDecay: 1e-3 },
];

describe('SimdOptimizer', () => {
  test('the assembled module is valid WebAssembly', () => {
    const wasm = (globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean } }).WebAssembly;
    assert.ok(wasm.validate(assemble()));
  });

  for (const cfg of CONFIGS) {
    test(`${JSON.stringify(cfg)}: 6 steps match the JS reference to float32 rounding`, () => {
      const simd = SimdOptimizer.create(PARAMS, cfg);
      assert.ok(simd, 'WebAssembly SIMD is available in Node 20');
      const js = createOptimizer(PARAMS, cfg);
      const pSimd = randomArrays(1, 1);
      const pJs = pSimd.map((a) => a.slice());
      for (let step = 0; step < 6; step++) {
        const grads = randomArrays(10 + step, 0.1);
        const lr = cfg.kind === 'adamw' ? 1e-2 : 0.1;
        simd.step(pSimd, grads.map((g) => g.slice()), lr);
        js.step(pJs, grads, lr);
      }
      // The JS loop computes in float64 and rounds on store; the kernels round every operation to
      // float32 (unit roundoff 6e-8). Six steps of updates of size ~lr stay within a few ulps of |p| ≤ ~3.
      const d = maxDiff(pSimd, pJs);
      assert.ok(d < 2e-6, `max relative difference ${d}`);
      assert.ok(maxDiff(pSimd, randomArrays(1, 1)) > 1e-3, 'the parameters moved');
      const a = simd.state();
      const b = js.state();
      assert.deepEqual({ ...a, slots: undefined }, { ...b, slots: undefined });
      for (const slot of Object.keys(b.slots)) assert.ok(maxDiff(a.slots[slot]!, b.slots[slot]!) < 2e-6, slot);
    });
  }

  test('views are updated in place and give the same result as copied arrays', () => {
    const viaViews = SimdOptimizer.create(PARAMS, { kind: 'adamw' })!;
    const viaCopies = SimdOptimizer.create(PARAMS, { kind: 'adamw' })!;
    const p0 = randomArrays(2, 1);
    const g0 = randomArrays(3, 0.1);
    const params = p0.map((a) => a.slice());
    PARAMS.forEach((_, i) => {
      viaViews.paramView(i).set(p0[i]!);
      viaViews.gradView(i).set(g0[i]!);
    });
    viaViews.step(PARAMS.map((_, i) => viaViews.paramView(i)), PARAMS.map((_, i) => viaViews.gradView(i)), 1e-2);
    viaCopies.step(params, g0, 1e-2);
    PARAMS.forEach((_, i) => assert.deepEqual(Array.from(viaViews.paramView(i)), Array.from(params[i]!)));
    assert.ok(maxDiff(params, p0) > 1e-3);
  });

  test('a state saved by the SIMD optimizer continues in the JS one and back (interchangeable checkpoints)', () => {
    const cfg: OptimizerConfig = { kind: 'adamw' };
    const simd = SimdOptimizer.create(PARAMS, cfg)!;
    const p = randomArrays(4, 1);
    for (let s = 0; s < 3; s++) simd.step(p, randomArrays(20 + s, 0.1), 1e-2);
    const js = createOptimizer(PARAMS, cfg);
    js.load(simd.state());
    const pJs = p.map((a) => a.slice());
    const g = randomArrays(30, 0.1);
    js.step(pJs, g, 1e-2);
    const again = SimdOptimizer.create(PARAMS, cfg)!;
    again.load(simd.state());
    again.step(p, g, 1e-2);
    assert.equal(again.stepCount, 4);
    assert.ok(maxDiff(p, pJs) < 2e-6);
    assert.throws(() => again.load({ ...js.state(), kind: 'sgd' }), /optimizer state is for 'sgd'/);
    assert.throws(() => again.step([p[0]!], [g[0]!], 1e-2), /expected 3 parameters/);
  });
});
