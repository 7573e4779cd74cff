/**
 * Distillation benchmark (issue 14): `npm run bench -- distill [--json] [--only=spam,mnist] [--seeds=N] [--full]`.
 *
 * For each embedded teacher, one student with ≤ 1/4 of its FLOPs, trained with N seeds (default 3) twice:
 * distilled from the teacher (KL at temperature T, T²-scaled, mixed with hard-label CE by alpha; teacher
 * logits cached once and shared by the seeds) and on hard labels alone (the baseline: same student,
 * seed, data order, epochs and schedule). Reported: teacher accuracy, mean and spread (sample standard
 * deviation, min, max) of both students' test accuracy, the drop in points against the teacher, the
 * FLOPs, parameter and batch-1 latency ratios (latency: teacher and student timed alternately).
 *
 * Goals: spam drop ≤ 1 point, MNIST drop ≤ 0.5 point, and the distilled mean above the baseline mean.
 * Anchors: DistilBERT kept 97% of BERT's score at 60% of its cost; TinyBERT 96.8% at 1/9.4 of the FLOPs.
 *
 * The default run is sized for a 2-core machine (minutes): spam trains on the first 1,600 emails for one
 * epoch; `--full` uses the whole train split and more epochs.
 */
import { intArg } from './args.js';
import { loadModel } from '../src/onnx/index.js';
import type { Model } from '../src/ir/model.js';
import { buildStudent, cacheTeacherLogits, distillModel, measureModels, trainBaseline } from '../src/training/index.js';
import type { TrainOptions } from '../src/training/index.js';

interface Case {
  name: 'spam' | 'mnist';
  teacher: string;
  student: string;
  goalDropPoints: number;
  temperature: number;
  alpha: number;
  train: (full: boolean) => Omit<TrainOptions, 'model'>;
}

/** The recipes, as data. */
const CASES: readonly Case[] = [
  {
    name: 'spam',
    teacher: 'models/spam-transformer.onnx',
    student: 'drop-layers+width=0.5',
    goalDropPoints: 1,
    temperature: 4,
    alpha: 0.5,
    train: (full) => ({ dataset: 'spam', epochs: full ? 2 : 1, batchSize: 16, lr: 1e-3, schedule: 'cosine', ...(full ? {} : { limit: 1600 }) }),
  },
  {
    name: 'mnist',
    teacher: 'models/mnist-cnn.onnx',
    student: 'width=0.45',
    goalDropPoints: 0.5,
    temperature: 4,
    alpha: 0.1,
    train: (full) => ({ dataset: 'mnist', epochs: full ? 10 : 3, batchSize: 64, lr: 3e-3, schedule: 'cosine' }),
  },
];

const log = (s: string) => process.stderr.write(s + '\n');

function spread(xs: number[]): { mean: number; std: number; min: number; max: number; runs: number[] } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std, min: Math.min(...xs), max: Math.max(...xs), runs: xs };
}

async function runCase(c: Case, seeds: number, full: boolean): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const teacher: Model = await loadModel(c.teacher);
  const student = await buildStudent(teacher, c.student);
  const train = c.train(full);
  const threads = { intraOpThreads: 1 };
  const cache = await cacheTeacherLogits(teacher, train.dataset, { ...(train.limit !== undefined ? { limit: train.limit } : {}), ...threads });
  log(`[${c.name}] teacher logits cached for ${cache.count} examples in ${cache.seconds.toFixed(1)} s`);
  const kd: number[] = [];
  const base: number[] = [];
  let lastKd: Model | undefined;
  for (let seed = 0; seed < seeds; seed++) {
    const common = { ...train, ...threads, seed, student: student.model };
    const d = await distillModel({ ...common, teacher, temperature: c.temperature, alpha: c.alpha, cacheTeacher: cache });
    const b = await trainBaseline(common);
    kd.push(d.finalAccuracy!);
    base.push(b.finalAccuracy!);
    lastKd = d.model;
    log(`[${c.name}] seed ${seed}: distilled ${(100 * d.finalAccuracy!).toFixed(2)}%, baseline ${(100 * b.finalAccuracy!).toFixed(2)}%`);
  }
  const [tf, sf] = await measureModels([teacher, lastKd!], train.dataset, threads);
  const distilled = spread(kd);
  const baseline = spread(base);
  const dropPoints = 100 * (tf!.accuracy - distilled.mean);
  const flopsRatio = sf!.flops! / tf!.flops!;
  const out = {
    teacher: c.teacher,
    student: `${c.student} (${student.description})`,
    recipe: { temperature: c.temperature, alpha: c.alpha, ...train, seeds },
    teacherAccuracy: tf!.accuracy,
    distilled,
    baseline,
    dropPoints,
    accuracyRetained: distilled.mean / tf!.accuracy,
    distilledMinusBaselinePoints: 100 * (distilled.mean - baseline.mean),
    flopsRatio,
    parameterRatio: sf!.parameterCount / tf!.parameterCount,
    latencyRatio: sf!.latencyP50Ms / tf!.latencyP50Ms,
    goals: { flopsAtMostQuarter: flopsRatio <= 0.25, drop: dropPoints <= c.goalDropPoints, beatsBaseline: distilled.mean > baseline.mean },
    teacherCacheSeconds: cache.seconds,
    seconds: (performance.now() - t0) / 1000,
  };
  const pct = (x: number) => (100 * x).toFixed(2);
  log(
    `[${c.name}] teacher ${pct(tf!.accuracy)}% | distilled ${pct(distilled.mean)} ± ${pct(distilled.std)}% | baseline ${pct(baseline.mean)} ± ${pct(baseline.std)}% | ` +
      `drop ${dropPoints.toFixed(2)} pt (goal ≤ ${c.goalDropPoints}) | FLOPs ×${flopsRatio.toFixed(3)} | params ×${out.parameterRatio.toFixed(3)} | latency ×${out.latencyRatio.toFixed(2)} | ${out.seconds.toFixed(0)} s`,
  );
  return out;
}

export async function distillBench(args: string[]): Promise<Record<string, unknown>> {
  const seeds = intArg(args, 'seeds', 3);
  const full = args.includes('--full');
  const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
  const unknown = only?.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown?.length) throw new Error(`--only: unknown case ${unknown.join(', ')} (cases: ${CASES.map((c) => c.name).join(', ')})`);
  const results: Record<string, unknown> = {};
  for (const c of CASES) if (!only || only.includes(c.name)) results[c.name] = await runCase(c, seeds, full);
  return {
    bench: 'distill',
    full,
    anchors: { distilbert: { retained: 0.97, costRatio: 0.6 }, tinybert: { retained: 0.968, flopsRatio: 1 / 9.4 } },
    ...results,
  };
}
