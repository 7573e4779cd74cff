/**
 * The trainer: epochs or steps over a built-in dataset, with the forward+backward pass run by ONNX
 * Runtime (one session over the training model from `buildTrainingModel`). The optimizer update sits
 * behind one interface, `UpdateBackend` (optimizers/backend.ts), which holds the weights and optimizer
 * state: per micro-batch the loop calls its `run` (the graph's loss, running statistics and float32
 * gradients) and unscales and accumulates the gradients; per optimizer step it calls its `update`
 * (clipping, then the step), or nothing for a step skipped on a float16 overflow. Three
 * backends: WebAssembly SIMD kernels (the default; zero copy, ORT reads weights from and writes
 * gradients into the kernels' memory), the JS reference optimizers where WebAssembly SIMD is missing,
 * and, with `fusedOptimizer: true` (no accumulation, fp32), the update as ONNX ops in the training
 * graph (slower on CPU). Checkpoints have the same format whichever backend wrote them.
 *
 * Determinism: the batch order of epoch e is a function of (seed, e) only, the schedule a function of the
 * step, and a checkpoint stores weights, running statistics and optimizer buffers bit for bit plus the
 * position (epoch, micro-batch in epoch, step). So with the same seed and `intraOpThreads: 1` (ORT's
 * reductions are then sequential), a run killed mid-epoch and resumed from its last checkpoint ends with
 * the same weights as an uninterrupted run. Dropout in training mode draws from ORT's own generator,
 * which a checkpoint cannot capture: models with active Dropout resume statistically, not bitwise.
 */
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';
import { batches } from '../data/index.js';
import { DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { Tensor } from '../ir/tensor.js';
import { createSession, type FrugalSession } from '../runtime/index.js';
import { type Checkpoint, loadCheckpoint, saveCheckpoint, type TrainingProgress } from './checkpoint.js';
import { type DatasetFeed, openDatasetFeed, recordTrainedOn, setModelMetadata } from '../data/feed.js';
import { accuracyOnTest } from '../evaluation/evaluate.js';
import { type LossSpec, targetDistribution } from './losses.js';
import { GradientAccumulator, type OptimizerConfig } from './optimizers/reference.js';
import { createUpdateBackend, type UpdateBackend } from './optimizers/backend.js';
import { DynamicLossScaler } from './loss-scaling.js';
import { float32ToFloat16Bits } from '../onnx/packing.js';
import { checkSchedule, learningRateAt } from './schedules.js';
import { buildEvalModel, buildTrainingModel, cloneModel, initializerArrays } from './training-graph.js';
import { EnergyMonitor, type MeasurementWindow, type WindowResult } from '../profiling/window.js';
import type { EpochSummary, ProgressEvent, TrainOptions, TrainResult } from './train-options.js';

export type { EpochSummary, ProgressEvent, TrainOptions, TrainResult } from './train-options.js';

const intOpt = (v: number | undefined, name: string, fallback: number, min = 1): number => {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < min) throw new FrugalError('E_USAGE', `${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
};

/**
 * Trains `opts.model` on `opts.dataset`; see {@link TrainOptions}. With `measureEnergy`, the run's
 * energy (setup included) and each epoch's (from its first step, evaluation included) are measured
 * by the profiler's meters, each figure labelled with its source (a counter, or an estimate).
 */
export async function trainModel(opts: TrainOptions): Promise<TrainResult> {
  if (!opts.measureEnergy) return runTraining(opts);
  const monitor = new EnergyMonitor();
  const window = monitor.begin('train');
  let epochWindow: MeasurementWindow | undefined;
  // Window ends are taken synchronously in the progress callback (timestamps and counter marks); the
  // figures are awaited after the run.
  const epochEnergy: Array<{ epoch: number; result: Promise<WindowResult> }> = [];
  let result: TrainResult;
  let run: WindowResult;
  try {
    result = await runTraining({
      ...opts,
      onStart: () => {
        epochWindow = monitor.begin('epoch');
        opts.onStart?.();
      },
      onProgress: (p) => {
        if (p.epochEnd && epochWindow) {
          epochEnergy.push({ epoch: p.epoch, result: epochWindow.end() });
          epochWindow = p.step < p.totalSteps ? monitor.begin('epoch') : undefined;
        }
        opts.onProgress?.(p);
      },
    });
  } finally {
    // A run that failed mid-epoch leaves its epoch window open: close it before the outer one.
    if (epochWindow) await epochWindow.end();
    run = await window.end();
    await monitor.close();
  }
  const epochs = await Promise.all(epochEnergy.map(async (e) => ({ epoch: e.epoch, energy: await e.result })));
  return { ...result, energy: { run, epochs } };
}

async function runTraining(opts: TrainOptions): Promise<TrainResult> {
  const run = setupRun(opts);
  const start = await resumeRun(run);
  const sessions = await openSessions(run);
  try {
    const loop = await trainLoop(run, start, sessions);
    return runResult(run, start, loop);
  } finally {
    for (const s of [sessions.train, sessions.evaluation, sessions.teacher]) await s?.release();
  }
}

/**
 * Everything a run needs that the options determine, built before any session: data, schedule,
 * training graph and the update backend (which holds the weights and the optimizer state). `stats`
 * (running statistics) is replaced by a resume and by every step.
 */
interface RunSetup {
  opts: TrainOptions;
  t0: number;
  batchSize: number;
  accumulate: number;
  seed: number;
  loss: LossSpec;
  scaler: DynamicLossScaler | undefined;
  feed: ReturnType<typeof openDatasetFeed>;
  microPerEpoch: number;
  totalSteps: number;
  epochs: number;
  schedule: Parameters<typeof learningRateAt>[0];
  trainGraph: Model;
  binding: ReturnType<typeof buildTrainingModel>['binding'];
  weightNames: string[];
  statNames: string[];
  stats: Map<string, Float32Array>;
  dims: Map<string, number[]>;
  /** Weights, optimizer state and the update: SIMD, JS or in the graph (optimizers/backend.ts). */
  backend: UpdateBackend;
  fingerprint: string;
}

function setupRun(opts: TrainOptions): RunSetup {
  const t0 = performance.now();
  const batchSize = intOpt(opts.batchSize, 'batch size', 64);
  const accumulate = intOpt(opts.accumulate, 'accumulate', 1);
  const seed = intOpt(opts.seed, 'seed', 0, 0);
  const optCfg: OptimizerConfig = typeof opts.optimizer === 'object' ? opts.optimizer : ({ kind: opts.optimizer ?? 'adamw' } as OptimizerConfig);
  const baseLr = opts.lr ?? (optCfg.kind === 'sgd' ? 0.05 : 1e-3);
  const loss: LossSpec = opts.loss ?? { kind: 'cross-entropy' };
  if (loss.kind === 'distillation' && !opts.teacher && !opts.batchFeeds) throw new FrugalError('E_USAGE', 'a distillation loss needs a teacher model (or its logits through batchFeeds)');
  if (opts.resume && !opts.checkpoint) throw new FrugalError('E_USAGE', 'resume needs a checkpoint file');
  if (opts.clipNorm !== undefined && !(opts.clipNorm > 0)) throw new FrugalError('E_USAGE', `clip norm must be > 0, got ${opts.clipNorm}`);
  if (opts.precision !== undefined && opts.precision !== 'fp32' && opts.precision !== 'fp16') throw new FrugalError('E_USAGE', `precision must be 'fp32' or 'fp16', got '${String(opts.precision)}'`);
  const mixed = opts.precision === 'fp16';
  const scaler = mixed ? new DynamicLossScaler(opts.lossScale) : undefined;

  const feed = openDatasetFeed(opts.dataset, opts.model, {
    ...(opts.augment ? { augment: { ...opts.augment, seed } } : {}),
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.evalLimit !== undefined ? { testLimit: opts.evalLimit } : {}),
    ...(opts.maxLength !== undefined ? { maxLength: opts.maxLength } : {}),
  });
  const microPerEpoch = Math.ceil(feed.counts.train / batchSize);
  const stepsPerEpoch = Math.ceil(microPerEpoch / accumulate);
  const totalSteps = opts.steps !== undefined ? intOpt(opts.steps, 'steps', 1) : intOpt(opts.epochs, 'epochs', 1) * stepsPerEpoch;
  const epochs = Math.ceil(totalSteps / stepsPerEpoch);
  const schedule = { kind: opts.schedule ?? 'constant', baseLr, warmupSteps: opts.warmupSteps ?? 0, totalSteps };
  checkSchedule(schedule);

  // The update runs in the ORT graph only when asked, and not when accumulating (optimizers/in-graph.ts) or in
  // mixed precision (the fp32 master weights live in JS).
  const fusedWanted = opts.fusedOptimizer === true && accumulate === 1 && !mixed;
  const { model: trainGraph, binding } = buildTrainingModel(opts.model, {
    loss,
    ...(opts.trainable ? { trainable: opts.trainable } : {}),
    ...(opts.dropout !== undefined ? { dropout: opts.dropout } : {}),
    ...(mixed ? { precision: 'fp16' as const } : {}),
    ...(opts.auxiliaryLosses?.length ? { auxiliaryLosses: opts.auxiliaryLosses } : {}),
    ...(fusedWanted ? { fusedOptimizer: { config: optCfg, ...(opts.clipNorm !== undefined ? { clipNorm: opts.clipNorm } : {}) } } : {}),
  });
  const weightNames = binding.weights.map((w) => w.name);
  const statNames = binding.runningStats.map((s) => s.input);
  const stats = initializerArrays(opts.model, statNames);
  const dims = new Map([...binding.weights.map((w) => [w.name, w.dims] as const), ...binding.runningStats.map((s) => [s.input, s.dims] as const)]);
  // In the graph when it has the update; else the SIMD kernels, or the JS loops where WebAssembly SIMD is missing.
  const backend = createUpdateBackend({
    weights: binding.weights,
    initial: initializerArrays(opts.model, weightNames),
    config: optCfg,
    ...(opts.clipNorm !== undefined ? { clipNorm: opts.clipNorm } : {}),
    ...(binding.fused ? { fused: binding.fused } : {}),
  });
  const fingerprint = JSON.stringify({ dataset: feed.name, train: feed.counts.train, batchSize, accumulate, seed, optimizer: optCfg.kind, weights: binding.weights.map((w) => [w.name, w.dims]), ...(mixed ? { precision: 'fp16' } : {}) });

  return { opts, t0, batchSize, accumulate, seed, loss, scaler, feed, microPerEpoch, totalSteps, epochs, schedule, trainGraph, binding, weightNames, statNames, stats, dims, backend, fingerprint };
}

/** Where the run starts: from scratch, or from `opts.checkpoint` when resuming (weights, stats, optimizer, progress). */
interface RunStart {
  progress: TrainingProgress;
  resumedFrom: TrainResult['resumedFrom'];
}

async function resumeRun(run: RunSetup): Promise<RunStart> {
  const { opts, fingerprint, weightNames, statNames, backend, scaler } = run;
  let progress: TrainingProgress = { epoch: 0, batchInEpoch: 0, step: 0, samples: 0, epochLossSum: 0, epochBatches: 0, history: [] };
  let resumedFrom: TrainResult['resumedFrom'];
  if (opts.resume && existsSync(opts.checkpoint!)) {
    const ck = await loadCheckpoint(opts.checkpoint!);
    if (ck.fingerprint !== fingerprint) {
      throw new FrugalError('E_USAGE', `checkpoint '${opts.checkpoint}' is from a different run (dataset, batch size, seed, optimizer or weights differ); remove it or match the original options`);
    }
    // Into the backend's arrays (the SIMD kernels' memory, the in-graph front buffers).
    for (const n of weightNames) backend.weights.get(n)!.set(ck.weights.get(n)!);
    run.stats = new Map(statNames.map((n) => [n, ck.stats.get(n)!]));
    backend.load(ck.optimizer);
    progress = ck.progress;
    if (scaler && progress.lossScale) scaler.load(progress.lossScale);
    resumedFrom = { epoch: progress.epoch, step: progress.step };
  }
  return { progress, resumedFrom };
}

interface RunSessions {
  train: FrugalSession;
  evaluation: FrugalSession | undefined;
  teacher: FrugalSession | undefined;
}

/** The ORT sessions of a run: the training graph, the evaluation graph and an online teacher. */
async function openSessions(run: RunSetup): Promise<RunSessions> {
  const { opts, trainGraph, weightNames, statNames } = run;
  const threads = opts.intraOpThreads !== undefined ? { intraOpThreads: opts.intraOpThreads } : {};
  const ep = opts.ep ? { ep: opts.ep } : {};
  const opened: FrugalSession[] = [];
  const open = async (model: Model, name: string): Promise<FrugalSession> => {
    const session = await createSession(model, { ...threads, ...ep, name });
    opened.push(session);
    return session;
  };
  try {
    const train = await open(trainGraph, 'training graph');
    const evaluation = opts.evaluate === false ? undefined : await open(buildEvalModel(opts.model, [...weightNames, ...statNames]), 'evaluation graph');
    const teacher = opts.teacher ? await open(opts.teacher, 'teacher') : undefined;
    return { train, evaluation, teacher };
  } catch (e) {
    // A session that failed to open must not leak the ones opened before it.
    for (const session of opened) await session.release();
    throw e;
  }
}

/** What the loop measured, for the result. */
interface LoopResult {
  progress: TrainingProgress;
  finalLoss: number;
  runSeconds: number;
  optimizerSeconds: number;
  samplesThisCall: number;
  trainSeconds: number;
  stopped: boolean;
}

/** Steps until `totalSteps` (or `stopAfterSteps`): feeds, runs, updates, evaluates each epoch, checkpoints. */
async function trainLoop(run: RunSetup, start: RunStart, sessions: RunSessions): Promise<LoopResult> {
  const { opts, batchSize, accumulate, seed, loss, scaler, feed, microPerEpoch, totalSteps, epochs, schedule, binding, dims, backend, fingerprint } = run;
  const weights = backend.weights;
  const { train: trainSession, evaluation: evalSession, teacher } = sessions;
  const stats = run.stats;
  let progress = start.progress;
  // fp32 weight tensors are reused while their array stays the same (the SIMD and JS backends update
  // in place; the in-graph one swaps buffers each step).
  const tensorCache = new Map<string, ort.Tensor>();
  const f32Tensor = (name: string, data: Float32Array, dims: number[]): ort.Tensor => {
    let t = tensorCache.get(name);
    if (!t || t.data !== data) tensorCache.set(name, (t = new ort.Tensor('float32', data, dims)));
    return t;
  };
  /** Weights and statistics as fed: fp32 to the evaluation graph, each weight's own type to the training graph. */
  const paramFeeds = (forTraining = false): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = {};
    for (const w of binding.weights) {
      const data = weights.get(w.name)!;
      // Mixed precision: the fp32 master copy rounded to float16 (ties to even) each step.
      f[w.name] = forTraining && w.dtype === 'float16' ? new ort.Tensor('float16', float32ToFloat16Bits(data), w.dims) : f32Tensor(w.name, data, w.dims);
    }
    for (const s of binding.runningStats) f[s.input] = new ort.Tensor('float32', stats.get(s.input)!, s.dims);
    return f;
  };
  const save = async () => {
    if (!opts.checkpoint) return;
    if (scaler) progress.lossScale = scaler.state();
    const ck: Checkpoint = { progress, fingerprint, weights: new Map(weights), stats, optimizer: backend.state() };
    await saveCheckpoint(opts.checkpoint, ck, dims);
  };
  const classes = feed.numClasses;
  const smoothing = loss.kind === 'mse' ? 0 : loss.labelSmoothing ?? 0;
  const accumulator = new GradientAccumulator();
  let overflowInStep = false;
  // The backend adds what it needs (the gradients; or the updated weights and state).
  const wanted = [binding.loss, ...binding.runningStats.map((s) => s.output)];
  let runSeconds = 0;
  let optimizerSeconds = 0;
  let samplesThisCall = 0;
  let stepsThisCall = 0;
  let finalLoss = Number.NaN;
  let stopped = false;
  const trainStart = performance.now();
  let evalMs = 0;

  const evaluate = async () => {
    if (!evalSession) return undefined;
    const e0 = performance.now();
    const r = await accuracyOnTest(evalSession, feed, 256, paramFeeds());
    evalMs += performance.now() - e0;
    return r.accuracy;
  };

  opts.onStart?.();
  outer: while (progress.step < totalSteps) {
    const order = [...batches(feed.counts.train, batchSize, { shuffle: true, seed: epochSeed(seed, progress.epoch) })];
    for (let bi = progress.batchInEpoch; bi < microPerEpoch; bi++) {
      const b = feed.batch('train', order[bi]!, progress.epoch);
      const extra = opts.batchFeeds?.(order[bi]!, progress.epoch) ?? {};
      const feeds: Record<string, ort.Tensor> = { ...b.feeds, ...paramFeeds(true), ...extra };
      if (scaler) feeds[binding.lossScale!] = new ort.Tensor('float32', Float32Array.of(scaler.scale), []);
      for (const li of binding.lossInputs) {
        if (Object.hasOwn(extra, li.name)) continue;
        if (li.role === 'auxiliary') throw new FrugalError('E_USAGE', `loss input '${li.name}' must be fed through batchFeeds`);
        if (li.role === 'teacher' && !teacher) throw new FrugalError('E_USAGE', `loss input '${li.name}' needs teacher logits: give a teacher model or feed it through batchFeeds`);
        if (li.role === 'target') feeds[li.name] = new ort.Tensor('float32', targetDistribution(b.labels, classes, smoothing), [b.count, classes]);
        else {
          const tOut = await teacher!.runOrt(b.feeds);
          feeds[li.name] = tOut[teacher!.outputNames[0]!] as ort.Tensor;
        }
      }
      const lr = learningRateAt(schedule, progress.step);
      const r0 = performance.now();
      const { outputs: out, gradients: grads } = await backend.run(trainSession, feeds, wanted, lr);
      const r1 = performance.now();
      runSeconds += (r1 - r0) / 1000;
      finalLoss = ((out[binding.loss] as ort.Tensor).data as Float32Array)[0]!;
      if (!Number.isFinite(finalLoss)) throw new FrugalError('E_RUNTIME', `the loss became ${finalLoss} at step ${progress.step}; lower the learning rate (now ${lr}) or clip gradients`);
      for (const s of binding.runningStats) stats.set(s.input, (out[s.output] as ort.Tensor).data as Float32Array);
      progress.batchInEpoch = bi + 1;
      progress.samples += b.count;
      progress.epochLossSum += finalLoss;
      progress.epochBatches++;
      samplesThisCall += b.count;

      const endOfEpoch = bi === microPerEpoch - 1;
      // Mixed precision: gradients come out multiplied by the loss scale; an inf or NaN in any
      // micro-batch of the step means the scale overflowed float16, and the whole step is skipped.
      if (scaler && !scaler.unscale(grads)) overflowInStep = true;
      let g = grads;
      if (accumulate > 1) {
        accumulator.add(grads, b.count);
        if (accumulator.micro < accumulate && !endOfEpoch) {
          optimizerSeconds += (performance.now() - r1) / 1000;
          continue;
        }
        g = accumulator.take();
      }
      // A step whose float16 gradients overflowed is skipped (mixed precision only).
      const finite = !overflowInStep;
      overflowInStep = false;
      scaler?.update(finite);
      // Clipping, then the update (in the graph: committing what the run computed).
      if (finite) backend.update(g, lr);
      progress.step++;
      stepsThisCall++;
      opts.afterStep?.(progress.step, weights);
      optimizerSeconds += (performance.now() - r1) / 1000;
      const elapsed = (performance.now() - trainStart - evalMs) / 1000;
      const event: ProgressEvent = { epoch: progress.epoch, epochs, step: progress.step, totalSteps, loss: finalLoss, lr, samplesPerSec: samplesThisCall / Math.max(elapsed, 1e-9) };
      if (endOfEpoch || progress.step >= totalSteps) break;
      opts.onProgress?.(event);
      if (opts.checkpointEvery && progress.step % opts.checkpointEvery === 0) await save();
      if (opts.stopAfterSteps !== undefined && stepsThisCall >= opts.stopAfterSteps) {
        stopped = true;
        break outer;
      }
    }
    // End of an epoch (or of the run mid-epoch): evaluate, record, checkpoint.
    const accuracy = await evaluate();
    const summary: EpochSummary = { epoch: progress.epoch, loss: progress.epochLossSum / Math.max(progress.epochBatches, 1), ...(accuracy !== undefined ? { accuracy } : {}) };
    progress.history.push(summary);
    const elapsed = (performance.now() - trainStart - evalMs) / 1000;
    opts.onProgress?.({ epoch: progress.epoch, epochs, step: progress.step, totalSteps, loss: finalLoss, lr: learningRateAt(schedule, Math.max(progress.step - 1, 0)), samplesPerSec: samplesThisCall / Math.max(elapsed, 1e-9), ...(accuracy !== undefined ? { accuracy } : {}), epochEnd: true });
    if (progress.batchInEpoch >= microPerEpoch) progress = { ...progress, epoch: progress.epoch + 1, batchInEpoch: 0, epochLossSum: 0, epochBatches: 0 };
    await save();
    if (opts.stopAfterSteps !== undefined && stepsThisCall >= opts.stopAfterSteps) {
      stopped = progress.step < totalSteps;
      break;
    }
  }

  return { progress, finalLoss, runSeconds, optimizerSeconds, samplesThisCall, trainSeconds: (performance.now() - trainStart - evalMs) / 1000, stopped };
}

/** The trained forward model (weights and statistics written back) and the run's figures. */
function runResult(run: RunSetup, start: RunStart, loop: LoopResult): TrainResult {
  const { opts, t0, backend, weightNames, feed, scaler } = run;
  const { progress, finalLoss, runSeconds, optimizerSeconds, samplesThisCall, trainSeconds, stopped } = loop;
  const { resumedFrom } = start;
  const trained = writeBack(opts.model, backend.weights, run.stats, feed);
  const last = progress.history.at(-1);
  return {
    model: trained,
    epochs: progress.history,
    finalLoss,
    ...(last?.accuracy !== undefined ? { finalAccuracy: last.accuracy } : {}),
    steps: progress.step,
    samples: progress.samples,
    samplesPerSec: samplesThisCall / Math.max(trainSeconds, 1e-9),
    wallSeconds: (performance.now() - t0) / 1000,
    runSeconds,
    optimizerSeconds,
    ...(resumedFrom ? { resumedFrom } : {}),
    ...(scaler ? { lossScale: scaler.state() } : {}),
    stopped,
    trainable: weightNames,
  };
}

/** The shuffle seed of an epoch: a pure function of the run seed and the epoch. */
function epochSeed(seed: number, epoch: number): number {
  return (Math.imul(seed, 1000003) + epoch) | 0;
}

/** A clone of `forward` with the trained weights and statistics as initializers, plus dataset metadata. */
function writeBack(forward: Model, weights: ReadonlyMap<string, Float32Array>, stats: Map<string, Float32Array>, feed: DatasetFeed): Model {
  const model = cloneModel(forward);
  for (const [name, data] of [...weights, ...stats]) {
    const v = model.graph.values.get(name)!;
    v.initializer = Tensor.fromArray(DataType.FLOAT, [...v.initializer!.dims], data.slice(), name);
  }
  setModelMetadata(model, feed.metadata);
  recordTrainedOn(model, feed.name, feed.counts.train);
  return model;
}
