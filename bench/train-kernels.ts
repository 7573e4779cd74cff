/**
 * Where a training step's time goes, kernel by kernel: ORT's own profiler on the training graph (forward,
 * loss and backward; the update runs outside it) of the zoo `mlp` and `cnn` at batch 64 on real MNIST,
 * next to the forward-only inference session. Prints the heaviest nodes' median kernel times, their sum,
 * and the median whole run, all from the same process.
 *
 * `npm run bench -- train-kernels [--json] [--models=mlp,cnn] [--batch=N] [--runs=N] [--top=N]`
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadMnist } from '../src/data/index.js';
import type { Model } from '../src/ir/model.js';
import { encodeModelToBytes } from '../src/onnx/index.js';
import { median } from '../src/profiling/stats.js';
import { buildTrainingModel, initializerArrays, targetDistribution } from '../src/training/index.js';
import { buildZooModel } from '../src/zoo/index.js';
import { intArg } from './args.js';

interface KernelProfile {
  runMs: number;
  kernelSumMs: number;
  nodes: Array<{ node: string; op: string; ms: number }>;
}

/** Runs `model` `runs` times under ORT's profiler (1 thread); median kernel time per node. */
async function profile(model: Model, feeds: Record<string, ort.Tensor>, runs: number, top: number): Promise<KernelProfile> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-kernels-'));
  try {
    const s = await ort.InferenceSession.create(encodeModelToBytes(model), { intraOpNumThreads: 1, enableProfiling: true, profileFilePrefix: path.join(dir, 'p') });
    for (let i = 0; i < runs; i++) await s.run(feeds);
    s.endProfiling();
    await s.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`ORT wrote no profile in ${dir}`);
    const events = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
    const byNode = new Map<string, { op: string; us: number[] }>();
    const runUs: number[] = [];
    for (const e of events) {
      if (e.cat === 'Session' && e.name === 'model_run') runUs.push(e.dur);
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const name = e.name.slice(0, -'_kernel_time'.length);
      const entry = byNode.get(name) ?? { op: e.args?.op_name ?? '?', us: [] };
      entry.us.push(e.dur);
      byNode.set(name, entry);
    }
    const nodes = [...byNode].map(([node, v]) => ({ node, op: v.op, ms: median(v.us) / 1000 })).sort((a, b) => b.ms - a.ms);
    return { runMs: median(runUs) / 1000, kernelSumMs: nodes.reduce((a, n) => a + n.ms, 0), nodes: nodes.slice(0, top) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function trainKernelsBench(args: string[]): Promise<Record<string, unknown>> {
  const batch = intArg(args, 'batch', 64);
  const runs = intArg(args, 'runs', 60);
  const top = intArg(args, 'top', 12);
  const models = (args.find((a) => a.startsWith('--models='))?.slice(9) ?? 'mlp,cnn').split(',');
  const { train } = loadMnist();
  const out: Record<string, unknown> = { batch, runs };
  for (const kind of models) {
    const forward = buildZooModel(kind);
    const input = forward.graph.inputs[0]!;
    const dims = kind === 'mlp' ? [batch, 784] : [batch, 1, 28, 28];
    const images = new ort.Tensor('float32', train.images.slice(0, batch * 784), dims);
    const { model, binding } = buildTrainingModel(forward, { loss: { kind: 'cross-entropy' }, dropout: false });
    const feeds: Record<string, ort.Tensor> = { [input.name]: images, [binding.lossInputs[0]!.name]: new ort.Tensor('float32', targetDistribution(train.labels.subarray(0, batch), 10), [batch, 10]) };
    const w = initializerArrays(forward, binding.weights.map((b) => b.name));
    for (const b of binding.weights) feeds[b.name] = new ort.Tensor('float32', w.get(b.name)!, b.dims);
    const trainingGraph = await profile(model, feeds, runs, top);
    const inference = await profile(forward, { [input.name]: images }, runs, top);
    out[kind] = { trainingGraph, inference };
    const line = (p: KernelProfile) => p.nodes.map((n) => `    ${n.ms.toFixed(3).padStart(7)} ms  ${n.op.padEnd(14)} ${n.node}`).join('\n');
    process.stderr.write(
      `${kind}: training graph run ${trainingGraph.runMs.toFixed(2)} ms (kernels ${trainingGraph.kernelSumMs.toFixed(2)} ms), inference run ${inference.runMs.toFixed(2)} ms (kernels ${inference.kernelSumMs.toFixed(2)} ms)\n` +
        `  training graph, heaviest nodes:\n${line(trainingGraph)}\n  inference, heaviest nodes:\n${line(inference)}\n`,
    );
  }
  return out;
}
