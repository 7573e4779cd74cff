/**
 * Optimizer-update benchmark: one AdamW step over the zoo MLP's parameters, three ways, in one run —
 * the WebAssembly SIMD kernels (the trainer's default), the JS reference loop, and the same update as
 * ONNX ops in an ORT session (the in-graph path, 1 thread, outputs allocated by ORT). Median ms per step
 * and each one's ratio to SIMD.
 *
 * `npm run bench -- optimizer [--json] [--steps=N]` (default 300 timed steps after 20 warm-up steps).
 */
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/ir/builder.js';
import { DataType } from '../src/ir/dtype.js';
import { median } from '../src/profiling/stats.js';
import { createSession } from '../src/runtime/index.js';
import { appendOptimizerUpdate, createOptimizer, fusedScalars, type OptimizerConfig, type ParamInfo, SimdOptimizer } from '../src/training/index.js';
import { createRng } from '../src/util/rng.js';
import { buildZooModel } from '../src/zoo/index.js';
import { intArg } from './args.js';

async function timed(steps: number, step: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < steps + 20; i++) {
    const t0 = performance.now();
    await step();
    if (i >= 20) times.push(performance.now() - t0);
  }
  return median(times);
}

export async function optimizerBench(args: string[]): Promise<Record<string, unknown>> {
  const steps = intArg(args, 'steps', 300);
  const cfg: OptimizerConfig = { kind: 'adamw' };
  const shapes = buildZooModel('mlp').graph.initializers().map((v) => ({ name: v.name, dims: v.initializer!.dims.map(Number) }));
  const params: ParamInfo[] = shapes.map((s) => ({ name: s.name, size: s.dims.reduce((a, b) => a * b, 1), decay: s.dims.length >= 2 }));
  const rng = createRng(1);
  const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => rng.normal() * scale);
  const weights = params.map((p) => random(p.size, 0.1));
  const grads = params.map((p) => random(p.size, 0.01));

  const simd = SimdOptimizer.create(params, cfg);
  if (!simd) throw new Error('WebAssembly SIMD is not available in this Node');
  params.forEach((_, i) => {
    simd.paramView(i).set(weights[i]!);
    simd.gradView(i).set(grads[i]!);
  });
  const simdViews = params.map((_, i) => simd.paramView(i));
  const simdGrads = params.map((_, i) => simd.gradView(i));
  const simdMs = await timed(steps, () => simd.step(simdViews, simdGrads, 1e-3));

  const js = createOptimizer(params, cfg);
  const jsWeights = weights.map((w) => w.slice());
  const jsMs = await timed(steps, () => js.step(jsWeights, grads, 1e-3));

  // The in-graph update alone: weights and gradients in, updated weights and state out.
  const b = new GraphBuilder('adamw');
  const fused = shapes.map((s) => ({ weight: b.input(s.name, DataType.FLOAT, s.dims), grad: b.input(`${s.name}.grad`, DataType.FLOAT, s.dims), dims: s.dims, decay: s.dims.length >= 2 }));
  const binding = appendOptimizerUpdate(b.graph, fused, cfg);
  const session = await createSession(b.build({ opsetImports: { '': 17 } }), { intraOpThreads: 1, name: 'in-graph AdamW' });
  const feeds: Record<string, ort.Tensor> = {};
  shapes.forEach((s, i) => {
    feeds[s.name] = new ort.Tensor('float32', weights[i]!.slice(), s.dims);
    feeds[`${s.name}.grad`] = new ort.Tensor('float32', grads[i]!, s.dims);
    for (const slot of Object.values(binding.params[i]!.slots)) feeds[slot.input] = new ort.Tensor('float32', new Float32Array(params[i]!.size), s.dims);
  });
  fusedScalars(binding, 1, 1e-3).forEach((x, i) => (feeds[binding.scalars[i]!] = new ort.Tensor('float32', Float32Array.of(x), [])));
  const graphMs = await timed(steps, () => session.runOrt(feeds));
  await session.release();

  const parameters = params.reduce((a, p) => a + p.size, 0);
  const r = { model: 'zoo mlp', parameters, steps, simdMs, jsMs, graphMs, jsOverSimd: jsMs / simdMs, graphOverSimd: graphMs / simdMs };
  process.stderr.write(
    `AdamW over ${parameters} parameters (median of ${steps} steps): SIMD ${simdMs.toFixed(3)} ms, JS ${jsMs.toFixed(3)} ms (${r.jsOverSimd.toFixed(1)}×), ` +
      `in-graph ORT ${graphMs.toFixed(3)} ms (${r.graphOverSimd.toFixed(1)}×)\n`,
  );
  return r;
}
