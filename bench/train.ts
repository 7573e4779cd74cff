/**
 * Training benchmark (issue 3): samples per second training the zoo `mlp` and `cnn` on real MNIST with
 * Frugal and with TensorFlow.js (wasm and cpu backends), same architectures, same Adam, same batch size,
 * in the same run; plus Frugal's train-step time over its forward-only time.
 *
 * Frugal's figure is whole optimizer steps of `trainModel` (batch gather + feed + ORT run + update, as a
 * user gets them): the time between consecutive progress events after a warm-up, median over several
 * runs. The forward-only figure is the median `session.run` of the forward model on a batch of the same
 * size. TF.js: median over timed `model.fit` epochs after a warm-up epoch (bench/tfjs-peer.ts).
 *
 * Batch 64: the trainer's default and a common MNIST batch; large enough that per-call overheads do not
 * dominate the MLP step, small enough that the TF.js cpu backend finishes in a few seconds per step.
 *
 * Threads: 1 by default, because TF.js's wasm backend runs single-threaded in Node (its SIMD build; no
 * multithread support there), so one ORT thread is the like-for-like comparison; `--threads=N` for more.
 *
 * Options: --batch=N (64) --steps=N (timed steps per run, 40) --reps=N (5) --threads=N (1)
 * --models=mlp,cnn --no-tfjs-cpu --fused=on|off|both (on: the optimizer in the ORT graph;
 * off: the trainer's default WebAssembly SIMD update; default both: the default is reported as
 * `frugalSamplesPerSec` etc., the in-graph one as `frugalGraphOptimizerSamplesPerSec` and
 * `trainStepOverForwardGraphOptimizer`).
 */
import { cpus } from 'node:os';
import * as ort from 'onnxruntime-node';
import { loadMnist } from '../src/data/index.js';
import { createSession } from '../src/runtime/index.js';
import { trainModel } from '../src/training/index.js';
import { buildZooModel } from '../src/zoo/index.js';
import { median } from '../src/profiling/stats.js';
import { intArg } from './args.js';
import { tfjsSamplesPerSec } from './tfjs-peer.js';

type Kind = 'mlp' | 'cnn';

/** Median seconds of one forward-only run of the zoo model on a batch of real images (after warm-up). */
async function forwardSeconds(kind: Kind, images: Float32Array, batch: number, threads: number, runs = 40): Promise<number> {
  const s = await createSession(buildZooModel(kind), { intraOpThreads: threads, name: kind });
  try {
    const dims = kind === 'mlp' ? [batch, 784] : [batch, 1, 28, 28];
    const feeds = { input: new ort.Tensor('float32', images.slice(0, batch * 784), dims) };
    for (let i = 0; i < 10; i++) await s.runOrt(feeds);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.runOrt(feeds);
      times.push((performance.now() - t0) / 1000);
    }
    return median(times);
  } finally {
    await s.release();
  }
}

/**
 * Per repetition: one training run of `warmup + steps` steps (seconds per whole step, between
 * consecutive progress events after the warm-up), then the forward-only time right after it, so that each
 * train/forward ratio compares measurements taken under the same machine load. Medians over reps.
 */
async function frugalRuns(
  kind: Kind,
  images: Float32Array,
  cfg: { batch: number; steps: number; reps: number; threads: number; fused: boolean },
): Promise<{ stepSeconds: number; forwardSeconds: number; ratio: number }> {
  const warmup = 5;
  const step: number[] = [];
  const fwd: number[] = [];
  const ratio: number[] = [];
  for (let r = 0; r < cfg.reps; r++) {
    const stamps: number[] = [];
    await trainModel({
      model: buildZooModel(kind),
      dataset: 'mnist',
      steps: warmup + cfg.steps + 1,
      batchSize: cfg.batch,
      seed: r,
      evaluate: false,
      intraOpThreads: cfg.threads,
      fusedOptimizer: cfg.fused,
      onProgress: () => stamps.push(performance.now()),
    });
    // stamps[i] ends step i+1; steps warmup+1 ... warmup+steps are timed.
    const t = stamps.slice(warmup - 1, warmup + cfg.steps);
    const sec = (t.at(-1)! - t[0]!) / 1000 / (t.length - 1);
    const f = await forwardSeconds(kind, images, cfg.batch, cfg.threads);
    step.push(sec);
    fwd.push(f);
    ratio.push(sec / f);
  }
  return { stepSeconds: median(step), forwardSeconds: median(fwd), ratio: median(ratio) };
}

export async function trainBench(args: string[]): Promise<Record<string, unknown>> {
  const batch = intArg(args, 'batch', 64);
  const steps = intArg(args, 'steps', 40);
  const reps = intArg(args, 'reps', 5);
  const threads = intArg(args, 'threads', 1);
  const models = (args.find((a) => a.startsWith('--models='))?.slice(9) ?? 'mlp,cnn').split(',') as Kind[];
  const tfjsCpu = !args.includes('--no-tfjs-cpu');
  const fusedArg = args.find((a) => a.startsWith('--fused='))?.slice(8) ?? 'both';
  const log = (s: string) => process.stderr.write(s + '\n');
  const { train } = loadMnist();
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    batch,
    steps,
    reps,
    threads,
    goals: { speedupVsTfjsWasm: 20, trainStepOverForward: 4 },
  };
  for (const kind of models) {
    const variants: Array<{ fused: boolean }> = fusedArg === 'both' ? [{ fused: true }, { fused: false }] : [{ fused: fusedArg !== 'off' }];
    const frugal: Record<string, { stepSeconds: number; forwardSeconds: number; ratio: number }> = {};
    for (const v of variants) {
      const m = await frugalRuns(kind, train.images, { batch, steps, reps, threads, fused: v.fused });
      frugal[v.fused ? 'graph' : 'simd'] = m;
      log(`${kind}: frugal (${v.fused ? 'optimizer in the ORT graph' : 'optimizer as WebAssembly SIMD'}) ${(m.stepSeconds * 1000).toFixed(2)} ms/step = ${(batch / m.stepSeconds).toFixed(0)} samples/s; forward only ${(m.forwardSeconds * 1000).toFixed(2)} ms; ratio ${m.ratio.toFixed(2)}`);
    }
    // TF.js: fewer steps on the slow cpu backend (its CNN step takes seconds), same batch.
    const tfSteps = kind === 'cnn' ? Math.min(steps, 10) : steps;
    // TF.js's wasm backend lacks the Conv2D gradient kernels (Conv2DBackpropFilter/Input): it cannot
    // train the CNN at all. That is reported as null with the reason, not as a number.
    let wasm: number | null = null;
    let wasmError: string | undefined;
    try {
      wasm = await tfjsSamplesPerSec(kind, 'wasm', train.images, train.labels, { batch, steps: tfSteps, reps: Math.min(reps, 3) });
      log(`${kind}: tfjs wasm ${wasm.toFixed(0)} samples/s`);
    } catch (e) {
      wasmError = (e as Error).message;
      log(`${kind}: tfjs wasm cannot train this model: ${wasmError}`);
    }
    // The cpu backend trains the CNN at a few samples per second: one batch per timed epoch there.
    const cpu = tfjsCpu ? await tfjsSamplesPerSec(kind, 'cpu', train.images, train.labels, { batch, steps: kind === 'cnn' ? 1 : 10, reps: 3 }) : null;
    if (cpu !== null) log(`${kind}: tfjs cpu ${cpu.toFixed(0)} samples/s`);
    // The trainer's default (the SIMD update) when measured, else the in-graph one.
    const main = frugal.simd ?? frugal.graph!;
    const entry: Record<string, unknown> = {
      frugalSamplesPerSec: batch / main.stepSeconds,
      tfjsWasmSamplesPerSec: wasm,
      tfjsCpuSamplesPerSec: cpu,
      speedupVsTfjsWasm: wasm === null ? null : batch / main.stepSeconds / wasm,
      ...(wasmError ? { tfjsWasmError: wasmError } : {}),
      speedupVsTfjsCpu: cpu === null ? null : batch / main.stepSeconds / cpu,
      trainStepOverForward: main.ratio,
      frugalStepMs: main.stepSeconds * 1000,
      forwardMs: main.forwardSeconds * 1000,
      optimizer: frugal.simd !== undefined ? 'WebAssembly SIMD' : 'in-graph (ORT)',
    };
    if (frugal.simd !== undefined && frugal.graph !== undefined) {
      entry.frugalGraphOptimizerSamplesPerSec = batch / frugal.graph.stepSeconds;
      entry.trainStepOverForwardGraphOptimizer = frugal.graph.ratio;
    }
    result[kind] = entry;
    const ratio = (v: unknown) => (typeof v === 'number' ? `${v.toFixed(1)}×` : 'n/a');
    log(`${kind}: speedup vs tfjs wasm ${ratio(entry.speedupVsTfjsWasm)} (goal ≥ 20), vs tfjs cpu ${ratio(entry.speedupVsTfjsCpu)}, train step / forward ${(entry.trainStepOverForward as number).toFixed(2)} (goal ≤ 4)`);
  }
  return result;
}
