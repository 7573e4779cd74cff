/**
 * `profileModels`: runs each model in ONNX Runtime on seeded random inputs (warm-up, then a measured
 * loop of iterations or a duration) inside a measurement window, and returns a versioned record with
 * latency percentiles, throughput, CPU time, peak RSS, energy and carbon, each with its source.
 *
 * The measured loop does nothing but one `performance.now()`, the ORT call and one array push per run:
 * feeds are converted to ORT tensors once and validated on the first warm-up run, and meters are read
 * only at the window's ends, so the profiler's own cost stays far below 1% of the workload
 * (`npm run bench -- profile`). When a meter needs a longer window (GPU sensors update every ~100 ms),
 * the loop keeps running until the window is at least 10× the meter's minimum and says so.
 */
import type * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';
import { dataTypeName } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import type { Dim } from '../ir/types.js';
import { createSession, type FeedSpec, type FrugalSession, randomFeeds, toOrtTensor } from '../runtime/index.js';
import type { CarbonOptions } from './carbon.js';
import { joulesToWh } from './carbon.js';
import type { MeterOptions } from './meters/registry.js';
import type { EnergyMeter } from './meters/types.js';
import { rateEnergies, ratingTolerance, whPer1000 } from './rating.js';
import { type ModelProfile, newRecord, type ProfileRecord } from './records.js';
import { summarize } from './stats.js';
import { nowMs, peakRssBytes } from './timer.js';
import { EnergyMonitor } from './window.js';

/** A model to profile: a path, or bytes / an IR model with a display name. */
export interface ModelInput {
  name?: string;
  path?: string;
  model?: Model | Uint8Array;
  /** Accuracy (0–1) from the caller's own evaluation, shown against energy in reports. */
  accuracy?: number;
}

export interface ProfileOptions {
  /** Warm-up runs before measuring (default 10, at least 1: the first run validates the feeds). */
  warmup?: number;
  /** Measured runs (default 100 unless `durationSeconds` is given). */
  iterations?: number;
  /** Measure for this long instead of a fixed number of runs. */
  durationSeconds?: number;
  /** ORT intra-op threads (default: ORT decides). */
  threads?: number;
  /** Execution provider (default cpu). */
  ep?: string;
  /** Size of each input's first dimension when it is symbolic (default 1). */
  batch?: number;
  /** Concrete shapes by input name (override `batch`). */
  shapes?: Record<string, ReadonlyArray<number | string>>;
  seed?: number;
  carbon?: CarbonOptions;
  /** Meters (default: the registry's, for cpu, plus gpu when ep is not cpu). */
  meters?: EnergyMeter[];
  meterOptions?: MeterOptions;
  /** Called with short progress lines. */
  onProgress?: (line: string) => void;
}

const MAX_SAMPLES = 10_000;

function checkInt(v: number | undefined, name: string, min: number): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) throw new FrugalError('E_USAGE', `${name} must be an integer ≥ ${min}, got ${v}`);
}

/** Concrete feed specs: given shapes, else the declared shape with a symbolic first dim set to `batch` and other symbolic dims 1. */
export function concreteSpecs(inputs: readonly FeedSpec[], batch: number, shapes: ProfileOptions['shapes'] = {}, modelName = 'model'): Array<FeedSpec & { shape: number[] }> {
  for (const name of Object.keys(shapes)) {
    if (!inputs.some((i) => i.name === name)) throw new FrugalError('E_USAGE', `--shape '${name}': model '${modelName}' has no such input (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  }
  return inputs.map((spec) => {
    const given = shapes[spec.name];
    if (given) {
      const bad = given.find((d) => typeof d !== 'number');
      if (bad !== undefined) throw new FrugalError('E_USAGE', `--shape for '${spec.name}': dimension '${bad}' must be a number`);
      return { ...spec, shape: given as number[] };
    }
    if (!spec.shape) throw new FrugalError('E_USAGE', `input '${spec.name}' of '${modelName}' has unknown rank; give its shape with --shape ${spec.name}=DxD`);
    return { ...spec, shape: spec.shape.map((d: Dim, k) => (typeof d === 'number' && d >= 0 ? d : k === 0 ? batch : 1)) };
  });
}

function subsample(sortedOrNot: number[]): number[] {
  const r = (x: number): number => Math.round(x * 1e6) / 1e6;
  if (sortedOrNot.length <= MAX_SAMPLES) return sortedOrNot.map(r);
  const s = [...sortedOrNot].sort((a, b) => a - b);
  return Array.from({ length: MAX_SAMPLES }, (_, i) => r(s[Math.round((i * (s.length - 1)) / (MAX_SAMPLES - 1))]!));
}

function nameOf(m: ModelInput | string, i: number): string {
  if (typeof m === 'string') return m;
  return m.name ?? m.path ?? `model ${i + 1}`;
}

/** Profiles the models one after the other under the same settings and meters; see the module comment. */
export async function profileModels(models: ReadonlyArray<string | ModelInput>, opts: ProfileOptions = {}): Promise<ProfileRecord> {
  if (models.length === 0) throw new FrugalError('E_USAGE', 'profileModels needs at least one model');
  const warmup = Math.max(1, opts.warmup ?? 10);
  checkInt(opts.warmup, 'warmup', 0);
  checkInt(opts.iterations, 'iterations', 1);
  checkInt(opts.batch, 'batch', 1);
  checkInt(opts.threads, 'threads', 1);
  if (opts.iterations !== undefined && opts.durationSeconds !== undefined) throw new FrugalError('E_USAGE', 'give iterations or a duration, not both');
  if (opts.durationSeconds !== undefined && !(opts.durationSeconds > 0 && Number.isFinite(opts.durationSeconds))) {
    throw new FrugalError('E_USAGE', `duration must be a positive number of seconds, got ${opts.durationSeconds}`);
  }
  const iterations = opts.durationSeconds === undefined ? (opts.iterations ?? 100) : null;
  const batch = opts.batch ?? 1;
  const ep = opts.ep ?? 'cpu';
  const seed = opts.seed ?? 0;
  const progress = opts.onProgress ?? (() => {});
  const monitor = new EnergyMonitor({ meters: opts.meters, meterOptions: opts.meterOptions, devices: ep === 'cpu' ? ['cpu'] : ['cpu', 'gpu'], carbon: opts.carbon });
  const profiles: ModelProfile[] = [];
  try {
    monitor.start(); // samplers warm up while the first model loads
    const minWindowMs = 10 * monitor.minWindowMs();
    for (const [i, m] of models.entries()) {
      const input: ModelInput = typeof m === 'string' ? { path: m } : m;
      const name = nameOf(m, i);
      const source = input.model ?? input.path;
      if (source === undefined) throw new FrugalError('E_USAGE', `model '${name}': give a path or a model`);
      progress(`[${name}] loading`);
      const session = await createSession(source, { ep, intraOpThreads: opts.threads, name });
      try {
        profiles.push(await profileSession(session, name, input, { warmup, iterations, durationSeconds: opts.durationSeconds ?? null, batch, seed, shapes: opts.shapes, minWindowMs, monitor, progress }));
      } finally {
        await session.release();
      }
    }
  } finally {
    await monitor.close();
  }
  const tolerance = ratingTolerance(profiles.map((p) => p.latencyMs));
  const ratings = rateEnergies(profiles.map((p) => p.energy.whPer1000Inferences), tolerance);
  profiles.forEach((p, i) => (p.rating = ratings[i]!));
  const record = newRecord({ ep, threads: opts.threads ?? null, batch, warmup, iterations, durationSeconds: opts.durationSeconds ?? null, seed }, monitor.carbon, monitor.statuses(), profiles);
  record.ratingTolerance = tolerance;
  return record;
}

interface LoopSettings {
  warmup: number;
  iterations: number | null;
  durationSeconds: number | null;
  batch: number;
  seed: number;
  shapes: ProfileOptions['shapes'];
  minWindowMs: number;
  monitor: EnergyMonitor;
  progress: (line: string) => void;
}

/**
 * The measured loop: runs `run` until the requested iterations (or duration in ms) are done and the
 * loop has lasted at least `minWindowMs`; per run it reads the clock once and stores one number.
 */
export async function measuredLoop(
  run: () => Promise<unknown>,
  opts: { iterations: number | null; durationMs?: number; minWindowMs?: number },
): Promise<{ latenciesMs: number[]; extended: boolean }> {
  const lat: number[] = [];
  const target = opts.iterations;
  const durationMs = opts.durationMs ?? 0;
  const minWindowMs = opts.minWindowMs ?? 0;
  let extended = false;
  const start = nowMs();
  let prev = start;
  for (;;) {
    await run();
    // One clock read per run: each run's end is the next run's start (the loop's own few
    // nanoseconds land in the latency, a clock read saved keeps the overhead down).
    const t = nowMs();
    lat.push(t - prev);
    prev = t;
    if (target !== null ? lat.length >= target : t - start >= durationMs) {
      if (t - start >= minWindowMs) break;
      extended = true;
    }
  }
  return { latenciesMs: lat, extended };
}

async function profileSession(session: FrugalSession, name: string, input: ModelInput, s: LoopSettings): Promise<ModelProfile> {
  const specs = concreteSpecs(session.inputs, s.batch, s.shapes, name);
  const feeds = randomFeeds(specs, { seed: s.seed });
  s.progress(`[${name}] warming up (${s.warmup} runs)`);
  await session.run(feeds); // validates names, types and shapes once, with Frugal's errors
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(t);
  const raw = session.ort;
  // Warm up through the measured loop and a discarded energy window, so that the first model measured
  // does not also pay for compiling the loop and the meters' first reads (measured on a 2-CPU VM: a
  // small model profiled first showed ~1.6× the latency and ~2.3× the energy of its own copy profiled next).
  if (s.warmup > 1) {
    const w0 = s.monitor.begin(`${name} (warm-up)`);
    await measuredLoop(() => raw.run(ortFeeds), { iterations: s.warmup - 1 });
    await w0.end();
  }

  s.progress(`[${name}] measuring ${s.iterations !== null ? `${s.iterations} runs` : `for ${s.durationSeconds} s`}`);
  const w = s.monitor.begin(name);
  const { latenciesMs: lat, extended } = await measuredLoop(() => raw.run(ortFeeds), { iterations: s.iterations, durationMs: (s.durationSeconds ?? 0) * 1000, minWindowMs: s.minWindowMs });
  const win = await w.end();
  const runs = lat.length;
  const inferences = runs * s.batch;
  const e = win.energy;
  const perInf = e.joules === null ? null : e.joules / inferences;
  const energySource = e.sources.join(' + ') || 'none';
  s.progress(`[${name}] ${runs} runs in ${win.seconds.toFixed(2)} s`);
  return {
    name,
    path: input.path ?? null,
    inputs: specs.map((sp) => ({ name: sp.name, dtype: sp.elemType === undefined ? 'unknown' : dataTypeName(sp.elemType), shape: sp.shape })),
    iterations: runs,
    inferences,
    seconds: win.seconds,
    extendedForEnergy: extended,
    latencyMs: summarize(lat),
    latencySamplesMs: subsample(lat),
    throughput: { runsPerSecond: runs / win.seconds, inferencesPerSecond: inferences / win.seconds },
    cpu: { userSeconds: win.cpu.userSeconds, systemSeconds: win.cpu.systemSeconds, utilization: (win.cpu.userSeconds + win.cpu.systemSeconds) / win.seconds },
    peakRssBytes: peakRssBytes(),
    energy: {
      joules: e.joules,
      joulesPerInference: perInf,
      totalWh: e.joules === null ? null : joulesToWh(e.joules),
      whPer1000Inferences: perInf === null ? null : whPer1000(perInf),
      sources: e.sources,
      estimated: e.estimated,
      ...(e.note ? { note: e.note } : {}),
      parts: e.parts.map((p) => ({ meter: p.meter, source: p.source, joules: p.joules, domains: p.domains, ...(p.note ? { note: p.note } : {}) })),
    },
    carbon: win.carbon && perInf !== null ? { grams: win.carbon.grams, gramsPerInference: win.carbon.grams / inferences, source: win.carbon.source } : null,
    rating: null,
    accuracy: input.accuracy ?? null,
    sources: {
      latency: 'measured:performance.now (per run, around the ONNX Runtime call)',
      throughput: 'measured:performance.now (runs × batch / window)',
      cpuTime: 'measured:getrusage (process, all threads)',
      peakRss: 'measured:getrusage ru_maxrss (process high-water mark)',
      energy: energySource,
      carbon: win.carbon ? win.carbon.source : 'none',
    },
  };
}
