/**
 * Quantization benchmark (issue 4): `npm run bench -- quantize [--json] [--only=teachers,bert,tool,real] [--reps=N]`.
 *
 * - teachers: per embedded teacher and mode, `accuracyDrop` (percentage points on the full test split),
 *   `sizeRatio` (file bytes) and `latencyRatio` (quantized / fp32, alternating runs in one process).
 *   Goals: int8 ≤ 0.5 point, int4 ≤ 1 point; size ≤ 0.27× (int8), ≤ 0.16× (int4) for weight-dominated models.
 * - bert: the BERT-base-shaped zoo encoder, int8 dynamic vs fp32 at batch 1, sequence 128 (goal ≤ 0.6×).
 * - tool: quantizing that model (load + pass + save, each in a fresh child process so peak RSS is the
 *   operation's own) vs reading and writing its bytes; `int8ToolRatio`, `int4ToolRatio` (goal ≤ 3) and
 *   `peakRssOverModelBytes` (goal ≤ 2.5).
 * - real: every model in ../shared/data/models and the PP-OCR models, in every mode (see quantize-real-models.ts).
 */
import { intArg } from './args.js';
import { type ChildResult, ownPeakRss, runChild } from './child.js';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadModel, saveModel } from '../src/onnx/index.js';
import { applyQuantizeMode, getQuantizeMode } from '../src/passes/registry.js';
import { compareModels } from '../src/evaluation/compare.js';
import { buildZooModel } from '../src/zoo/index.js';
import { median } from '../src/profiling/stats.js';
import { formatRealModelTable, realModelSweep } from './quantize-real-models.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TEACHERS: ReadonlyArray<{ file: string; dataset: string }> = [
  { file: 'models/mnist-cnn.onnx', dataset: 'mnist' },
  { file: 'models/spam-transformer.onnx', dataset: 'spam' },
];
const TEACHER_MODES = ['int8-dynamic', 'int8-static', 'int4', 'q4f16', 'fp16'];

const log = (s: string) => process.stderr.write(s + '\n');

/** Quantizes `input` in `mode` and writes `output`; calibrated modes calibrate on `dataset`. */
async function quantizeFile(input: string, output: string, mode: string, dataset?: string): Promise<Record<string, unknown>> {
  const model = await loadModel(input);
  const m = getQuantizeMode(mode);
  const calibration = m.calibrated ? await m.calibrationFor!(model, dataset ?? 'random', 256) : undefined;
  const r = await applyQuantizeMode(model, mode, calibration ? { calibration } : {});
  await saveModel(r.model, output, { externalData: false });
  return r.passes[0]?.stats ?? {};
}

async function teachersBench(dir: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const t of TEACHERS) {
    if (!existsSync(t.file)) {
      log(`teachers: ${t.file} not found, skipped`);
      out[path.basename(t.file, '.onnx')] = { skipped: `${t.file} not found` };
      continue;
    }
    const rows: Record<string, unknown> = {};
    for (const mode of TEACHER_MODES) {
      const q = path.join(dir, `${path.basename(t.file, '.onnx')}-${mode}.onnx`);
      try {
        await quantizeFile(t.file, q, mode, t.dataset);
        const c = await compareModels(t.file, q, { dataset: t.dataset, limit: 100_000, latencyRuns: 30, warmupRuns: 5 });
        rows[mode] = {
          accuracyDrop: c.accuracy!.dropPoints,
          referenceAccuracy: c.accuracy!.reference,
          accuracy: c.accuracy!.candidate,
          testExamples: c.accuracy!.count,
          sizeRatio: c.sizeRatio,
          latencyRatio: c.latency!.ratio,
          latencyMs: { fp32: c.latency!.referenceMs, quantized: c.latency!.candidateMs },
          top1Agreement: c.top1Agreement,
        };
        log(`${t.file} ${mode}: accuracy ${(100 * c.accuracy!.reference).toFixed(2)}% → ${(100 * c.accuracy!.candidate).toFixed(2)}% (drop ${c.accuracy!.dropPoints.toFixed(2)} points), size ${c.sizeRatio.toFixed(3)}×, latency ${c.latency!.ratio.toFixed(3)}×`);
      } catch (e) {
        rows[mode] = { error: (e as Error).message };
        log(`${t.file} ${mode}: FAILED ${(e as Error).message}`);
      }
    }
    out[path.basename(t.file, '.onnx')] = rows;
  }
  return out;
}

async function bertLatencyBench(dir: string, fp32: string): Promise<Record<string, unknown>> {
  const q = path.join(dir, 'bert-base-int8.onnx');
  log('bert: quantizing to int8 (dynamic, default settings)...');
  await quantizeFile(fp32, q, 'int8-dynamic');
  const c = await compareModels(fp32, q, { dims: { batch: 1, seq: 128 }, randomSamples: 1, latencyRuns: 10, warmupRuns: 2 });
  const r = {
    batch: 1,
    sequence: 128,
    fp32Ms: c.latency!.referenceMs,
    int8Ms: c.latency!.candidateMs,
    latencyRatio: c.latency!.ratio,
    sizeRatio: c.sizeRatio,
    cosineSimilarity: c.cosineSimilarity,
    maxRelativeError: c.maxRelativeError,
    goal: 0.6,
  };
  log(`bert-base int8 vs fp32 at batch 1, seq 128: ${r.int8Ms.toFixed(1)} ms vs ${r.fp32Ms.toFixed(1)} ms = ${r.latencyRatio.toFixed(3)}× (goal ≤ 0.6), size ${r.sizeRatio.toFixed(3)}×, logits cosine ${r.cosineSimilarity.toFixed(5)}`);
  return r;
}

const child = runChild;

async function toolBench(dir: string, fp32: string, reps: number): Promise<Record<string, unknown>> {
  const modelBytes = statSync(fp32).size;
  const io = (o: string) => child([path.join(HERE, 'codec-child.js'), 'io', fp32, o], o);
  const quant = (mode: string, o: string) => child([fileURLToPath(import.meta.url), 'child', mode, fp32, o], o);
  io(path.join(dir, 'warm.onnx')); // warm the page cache
  const runs: Record<string, ChildResult[]> = { io: [], int8: [], int4: [] };
  for (let i = 0; i < reps; i++) {
    runs.io!.push(io(path.join(dir, 'io.onnx')));
    runs.int8!.push(quant('int8-dynamic', path.join(dir, 'tool-int8.onnx')));
    runs.int4!.push(quant('int4', path.join(dir, 'tool-int4.onnx')));
    log(`tool rep ${i + 1}/${reps}: io ${runs.io![i]!.seconds.toFixed(2)} s, int8 ${runs.int8![i]!.seconds.toFixed(2)} s, int4 ${runs.int4![i]!.seconds.toFixed(2)} s`);
  }
  const sec = (k: string) => median(runs[k]!.map((r) => r.seconds));
  const rss = (k: string) => Math.max(...runs[k]!.map((r) => r.maxRssBytes));
  const r = {
    model: 'bert-base (zoo)',
    modelBytes,
    repetitions: reps,
    ioSeconds: sec('io'),
    int8Seconds: sec('int8'),
    int4Seconds: sec('int4'),
    int8ToolRatio: sec('int8') / sec('io'),
    int4ToolRatio: sec('int4') / sec('io'),
    int8PeakRssBytes: rss('int8'),
    int4PeakRssBytes: rss('int4'),
    peakRssOverModelBytes: Math.max(rss('int8'), rss('int4')) / modelBytes,
    goals: { toolRatio: 3, peakRssOverModelBytes: 2.5 },
  };
  log(
    `tool speed: int8 ${r.int8Seconds.toFixed(2)} s, int4 ${r.int4Seconds.toFixed(2)} s vs read+write ${r.ioSeconds.toFixed(2)} s: ` +
      `${r.int8ToolRatio.toFixed(2)}× and ${r.int4ToolRatio.toFixed(2)}× (goal ≤ 3); peak RSS ${(Math.max(r.int8PeakRssBytes, r.int4PeakRssBytes) / 2 ** 20).toFixed(0)} MiB = ` +
      `${r.peakRssOverModelBytes.toFixed(2)}× the ${(modelBytes / 2 ** 20).toFixed(0)} MiB model (goal ≤ 2.5)`,
  );
  return r;
}

export async function quantizeBench(args: string[]): Promise<Record<string, unknown>> {
  const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',') ?? ['teachers', 'bert', 'tool', 'real'];
  const reps = intArg(args, 'reps', 3);
  const dir = path.resolve('.bench-tmp-quantize');
  mkdirSync(dir, { recursive: true });
  const result: Record<string, unknown> = { machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown' } };
  try {
    if (only.includes('teachers')) result.teachers = await teachersBench(dir);
    if (only.includes('bert') || only.includes('tool')) {
      const fp32 = path.join(dir, 'bert-base.onnx');
      log('building the bert-base zoo model...');
      await saveModel(buildZooModel('bert-base'), fp32, { externalData: false });
      if (only.includes('bert')) result.bertBase = await bertLatencyBench(dir, fp32);
      if (only.includes('tool')) Object.assign(result, { toolSpeed: await toolBench(dir, fp32, reps) });
    }
    if (only.includes('real')) {
      const rows = await realModelSweep({ onRow: (r) => log(`real: ${r.model} ${r.mode}: ${r.ranInOrt ? 'ran' : 'did not run'} ${r.note}`) });
      result.realModels = rows;
      log('\n' + formatRealModelTable(rows));
    }
    const ts = result.toolSpeed as Record<string, number> | undefined;
    if (ts) Object.assign(result, { int8ToolRatio: ts.int8ToolRatio, int4ToolRatio: ts.int4ToolRatio, peakRssOverModelBytes: ts.peakRssOverModelBytes });
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


/** Child process: `node quantize.js child <mode> <in> <out>` quantizes one file and prints its time and peak RSS. */
async function childMain(mode: string, input: string, output: string): Promise<void> {
  const t0 = performance.now();
  const model = await loadModel(input);
  const r = await applyQuantizeMode(model, mode);
  await saveModel(r.model, output, { externalData: false });
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, maxRssBytes: ownPeakRss() }) + '\n');
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url && process.argv[2] === 'child') {
  const [mode, input, output] = process.argv.slice(3) as [string, string, string];
  await childMain(mode, input, output);
}

