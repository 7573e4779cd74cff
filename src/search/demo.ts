/**
 * Frugal's main job on its embedded default: take the trained teacher models, make int8 (dynamic and
 * static), int4 and fp16 variants, evaluate accuracy on the held-out split, profile latency, memory and
 * energy side by side, mark the accuracy/energy Pareto front, and write everything to one folder
 * (the models under transformers.js file names, report.json, report.md, report.html).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { FrugalError } from '../errors.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeModel, encodeModelToBytes, loadModel, saveModel, writeFileAtomic } from '../onnx/index.js';
import { applyQuantizeMode, getQuantizeMode } from '../passes/registry.js';
import { profileModels } from '../profiling/profiler.js';
import type { ProfileRecord } from '../profiling/records.js';
import { escapeHtml as esc, htmlDocument, htmlSection } from '../report/html.js';
import { markdownReport } from '../report/markdown.js';
import { openDatasetFeed } from '../data/feed.js';
import { evaluateModel } from '../evaluation/evaluate.js';
import { paretoFront } from './pareto.js';
import { searchCandidates } from './optimize.js';
import { selectCandidates } from './candidates.js';
import { candidateRows, CANDIDATE_HEADER, type OptimizeReport, writeSearchOutputs } from './optimize-report.js';

/**
 * The search the demo runs on each teacher after its quantized variants: pruned, distilled, efficient-attention
 * (linear) and pruned→int8 candidates beside int8, and the pick within 1 point of validation accuracy (a
 * model without attention lists the attention rows as rejected, with the reason). `--quick` keeps to a few
 * candidates and short fine-tunes so CI stays within a couple of minutes on two cores; its attention row is
 * the pruned linear-attention one, whose FLOPs are the lowest of the table, so the cost model never skips
 * it and the transformer always shows an efficient-attention variant.
 */
export const DEMO_SEARCH = Object.freeze({
  maxDropPoints: 1,
  quick: Object.freeze({ candidates: ['int8-dynamic', 'structured-0.5', 'distill-w0.5', 'structured-0.5+int8-dynamic', 'structured-0.75+attention-linear'], validation: { mnist: 500, spam: 100 }, trainLimit: { mnist: 512, spam: 48 }, profileSeconds: 0.3 }),
  full: Object.freeze({ candidates: undefined, validation: { mnist: 1000, spam: 400 }, trainLimit: { mnist: 2000, spam: 256 }, profileSeconds: 1 }),
});

/** The embedded teachers the demo starts from (trained by `npm run teachers`). */
export const DEMO_TEACHERS = Object.freeze([
  { name: 'mnist-cnn', file: 'models/mnist-cnn.onnx', dataset: 'mnist', task: 'MNIST digits (CNN)', evalBatch: 256 },
  // Attention scores are batch × heads × 512 × 512 floats: at the evaluator's default batch of 256 one
  // such tensor is ~1 GiB and the demo peaked at 2.7 GB RSS (quick) to 5.4 GB; 16 keeps it to ~64 MiB.
  { name: 'spam-transformer', file: 'models/spam-transformer.onnx', dataset: 'spam', task: 'SpamAssassin spam vs ham (transformer, 512 tokens)', evalBatch: 16 },
] as const);

/** Variants made from each teacher: `fp32` is the teacher itself; the others are registry modes. */
export const DEMO_MODES = Object.freeze(['fp32', 'int8-dynamic', 'int8-static', 'int4', 'fp16'] as const);

export interface DemoOptions {
  /** Output folder (created; files in it are replaced atomically). */
  outDir: string;
  /** Fewer test examples, calibration examples and timing runs (CI's short form). */
  quick?: boolean;
  /** Folder holding `models/` with the teachers (default: this package's own). */
  root?: string;
  /** Called at every step with a line for people and the step as data (see DemoStep). */
  onProgress?: (line: string, step: DemoStep) => void;
}

/** Where the demo is: teacher i of n, variant j of m (absent while profiling), and what it is doing. */
export interface DemoStep {
  teacher: string;
  /** 1-based. */
  teacherIndex: number;
  teacherCount: number;
  variant?: string;
  /** 1-based; absent while profiling all variants together. */
  variantIndex?: number;
  variantCount: number;
  phase: 'quantize' | 'evaluate' | 'profile' | 'optimize';
}

export interface DemoVariant {
  teacher: string;
  mode: string;
  file: string;
  sizeBytes: number;
  accuracy: number;
  /** accuracy − the fp32 teacher's, in accuracy points (percent). */
  accuracyDeltaPoints: number;
  latencyP50Ms: number;
  /** p50 latency over the fp32 teacher's, same run. */
  latencyRatio: number;
  peakRssBytes: number;
  joulesPerInference: number | null;
  /** `measured:…` or `estimated:…` for every energy figure. */
  energySource: string;
  /** On the accuracy/energy Pareto front of this teacher's variants. */
  pareto: boolean;
  /** What the pass did (quantized / skipped nodes and why). */
  passStats: Array<{ name: string; stats: Record<string, unknown> }>;
}

export interface DemoTeacherResult {
  name: string;
  task: string;
  dataset: string;
  evaluatedExamples: number;
  variants: DemoVariant[];
  record: ProfileRecord;
  /** The optimize search on this teacher (pruned, distilled, combined candidates and the pick); written under `<teacher>/optimize/`. */
  optimize: OptimizeReport;
}

export interface DemoResult {
  outDir: string;
  quick: boolean;
  seconds: number;
  teachers: DemoTeacherResult[];
}

/** The repository root (models/ lives there), wherever the process was started. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const quick = opts.quick === true;
  const say = opts.onProgress ?? (() => {});
  const teachers: DemoTeacherResult[] = [];
  // Check the inputs before creating anything: a missing teacher must not leave an empty report folder.
  for (const t of DEMO_TEACHERS) {
    const source = path.join(opts.root ?? packageRoot(), t.file);
    if (!existsSync(source)) {
      throw new FrugalError('E_IO', `cannot find the embedded teacher model '${source}': this Frugal install is incomplete (reinstall the package, or run 'npm run teachers' in a clone)`);
    }
  }
  for (const [ti, t] of DEMO_TEACHERS.entries()) {
    const at = (phase: DemoStep['phase'], mode?: string): DemoStep => ({
      teacher: t.name,
      teacherIndex: ti + 1,
      teacherCount: DEMO_TEACHERS.length,
      ...(mode !== undefined ? { variant: mode, variantIndex: DEMO_MODES.indexOf(mode as (typeof DEMO_MODES)[number]) + 1 } : {}),
      variantCount: DEMO_MODES.length,
      phase,
    });
    // `[teacher 1/2, variant 2/5] mnist-cnn int8-dynamic: quantizing`
    const step = (phase: DemoStep['phase'], what: string, mode?: string): void => {
      const s = at(phase, mode);
      const where = `[teacher ${s.teacherIndex}/${s.teacherCount}${s.variantIndex ? `, variant ${s.variantIndex}/${s.variantCount}` : ''}] ${t.name}${mode ? ` ${mode}` : ''}`;
      say(`${where}: ${what}`, s);
    };
    const dir = path.join(opts.outDir, t.name);
    mkdirSync(dir, { recursive: true });
    const source = path.join(opts.root ?? packageRoot(), t.file);
    const limit = quick ? (t.dataset === 'mnist' ? 500 : 200) : undefined;
    const made: Array<{ mode: string; file: string; sizeBytes: number; accuracy: number; passStats: DemoVariant['passStats'] }> = [];
    let evaluated = 0;
    // Read once per teacher: the file, and its test data (for text: tokenized once, not per variant).
    const teacher = await loadModel(source);
    const feed = openDatasetFeed(t.dataset, teacher, { ...(limit !== undefined ? { testLimit: limit } : {}), evalOnly: true });
    const teacherBytes = encodeModelToBytes(teacher);
    for (const mode of DEMO_MODES) {
      step('quantize', mode === 'fp32' ? 'copying the teacher' : 'quantizing', mode);
      // A fresh copy per mode: passes modify their input.
      const model = mode === 'fp32' ? teacher : decodeModel(teacherBytes.slice());
      let out = model;
      let passStats: DemoVariant['passStats'] = [];
      const file = path.join(dir, mode === 'fp32' ? 'model.onnx' : getQuantizeMode(mode).fileName);
      if (mode !== 'fp32') {
        const m = getQuantizeMode(mode);
        // Calibration exposes every activation at once (attention scores included): batches no larger
        // than evaluation's keep its memory bounded the same way.
        const calibration = m.calibrated ? await m.calibrationFor!(model, t.dataset, quick ? 32 : 128, Math.min(32, t.evalBatch)) : undefined;
        const r = await applyQuantizeMode(model, mode, calibration ? { calibration } : {});
        out = r.model;
        passStats = r.passes.map((p) => ({ name: p.name, stats: p.stats }));
      }
      const saved = await saveModel(out, file, { externalData: false, protect: [source] });
      step('evaluate', `evaluating accuracy on ${limit ?? 'all'} test examples`, mode);
      const acc = await evaluateModel(out, t.dataset, { feed, batchSize: t.evalBatch });
      evaluated = acc.count;
      made.push({ mode, file, sizeBytes: saved.bytes, accuracy: acc.accuracy, passStats });
    }
    step('profile', `profiling ${made.length} variants side by side`);
    const record = await profileModels(
      made.map((v) => ({ name: `${t.name}/${v.mode}`, path: v.file, accuracy: v.accuracy })),
      {
        batch: 1,
        // One intra-op thread: a spinning thread pool would make CPU-time (and so estimated energy) noisy.
        threads: 1,
        // Text models run at their full sequence length, not at a symbolic dim's default of 1.
        ...(t.dataset === 'spam' ? { shapes: { input_ids: [1, 512], attention_mask: [1, 512] } } : {}),
        warmup: quick ? 3 : 10,
        // Windows of whole seconds: CPU-time-based energy estimates need more than a few clock ticks.
        durationSeconds: quick ? 0.5 : 3,
        onProgress: (l) => step('profile', l),
      },
    );
    const base = made[0]!;
    const baseP50 = record.models[0]!.latencyMs.p50;
    const front = paretoFront(record.models.map((m, i) => ({ accuracy: made[i]!.accuracy, cost: m.energy.joulesPerInference })));
    const variants = made.map((v, i): DemoVariant => {
      const p = record.models[i]!;
      return {
        teacher: t.name,
        mode: v.mode,
        file: v.file,
        sizeBytes: v.sizeBytes,
        accuracy: v.accuracy,
        accuracyDeltaPoints: (v.accuracy - base.accuracy) * 100,
        latencyP50Ms: p.latencyMs.p50,
        latencyRatio: p.latencyMs.p50 / baseP50,
        peakRssBytes: p.peakRssBytes,
        joulesPerInference: p.energy.joulesPerInference,
        energySource: p.energy.sources.join(' + ') || 'none',
        pareto: front[i]!,
        passStats: v.passStats,
      };
    });
    const plan = quick ? DEMO_SEARCH.quick : DEMO_SEARCH.full;
    const ds = t.dataset as 'mnist' | 'spam';
    const search = await searchCandidates({
      model: teacher,
      dataset: t.dataset,
      maxDropPoints: DEMO_SEARCH.maxDropPoints,
      objective: 'energy',
      candidates: selectCandidates(plan.candidates),
      validationCount: plan.validation[ds],
      trainLimit: plan.trainLimit[ds],
      profileSeconds: plan.profileSeconds,
      warmup: quick ? 2 : 5,
      cacheDir: path.join(dir, 'optimize', '.frugal-cache'),
      onProgress: (l) => step('optimize', `optimize ${l}`),
    });
    const optimize = await writeSearchOutputs(search, path.join(dir, 'optimize'), source);
    teachers.push({ name: t.name, task: t.task, dataset: t.dataset, evaluatedExamples: evaluated, variants, record, optimize });
  }
  const result: DemoResult = { outDir: opts.outDir, quick, seconds: (performance.now() - t0) / 1000, teachers };
  await writeDemoReports(result);
  return result;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;

/** Rows of the demo's summary table (shared by the terminal, Markdown and HTML outputs). */
export function demoRows(t: DemoTeacherResult): string[][] {
  return t.variants.map((v) => [
    v.mode,
    pct(v.accuracy),
    v.mode === 'fp32' ? '' : signed(v.accuracyDeltaPoints),
    `${(v.sizeBytes / 1024).toFixed(0)} KiB`,
    `${(v.sizeBytes / t.variants[0]!.sizeBytes).toFixed(2)}×`,
    v.latencyP50Ms.toFixed(3),
    `${v.latencyRatio.toFixed(2)}×`,
    v.joulesPerInference === null ? 'n/a' : (v.joulesPerInference * 1000).toPrecision(3),
    v.energySource,
    v.pareto ? 'yes' : '',
  ]);
}

export const DEMO_HEADER = ['variant', 'accuracy', 'Δ points', 'size', 'size ratio', 'p50 ms', 'p50 ratio', 'mJ/inference', 'energy source', 'Pareto'];

async function writeDemoReports(r: DemoResult): Promise<void> {
  await writeFileAtomic(path.join(r.outDir, 'report.json'), JSON.stringify(r, null, 2));
  const md: string[] = ['# Frugal demo', '', intro(r), ''];
  for (const t of r.teachers) {
    md.push(`## ${t.name}: ${t.task}`, '', `Accuracy on ${t.evaluatedExamples} held-out test examples.`, '');
    md.push(`| ${DEMO_HEADER.join(' | ')} |`, `|${DEMO_HEADER.map(() => '---').join('|')}|`, ...demoRows(t).map((row) => `| ${row.join(' | ')} |`), '');
    md.push(`### ${t.name}: pruned, distilled, linear-attention and the optimize pick`, '', optimizeLine(t), '');
    md.push(`| ${CANDIDATE_HEADER.join(' | ')} |`, `|${CANDIDATE_HEADER.map(() => '---').join('|')}|`, ...candidateRows(t.optimize).map((row) => `| ${row.join(' | ')} |`), '');
    md.push(markdownReport(t.record, `${t.name}: profile`).replace(/^# /m, '### '), '');
  }
  await writeFileAtomic(path.join(r.outDir, 'report.md'), md.join('\n'));
  const parts = [`<h1>Frugal demo</h1><p>${esc(intro(r))}</p>`];
  for (const t of r.teachers) {
    parts.push(
      `<h2>${esc(`${t.name}: ${t.task}`)}</h2><p>Accuracy on ${t.evaluatedExamples} held-out test examples; Pareto: on the accuracy/energy front of these variants.</p>` +
        `<table><thead><tr>${DEMO_HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${demoRows(t)
          .map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
          .join('')}</tbody></table>`,
    );
    parts.push(
      `<h3>${esc(`${t.name}: pruned, distilled, linear-attention and the optimize pick`)}</h3><p>${esc(optimizeLine(t))} Full report: <code>${esc(path.join(t.name, 'optimize', 'report.html'))}</code>.</p>` +
        `<table><thead><tr>${CANDIDATE_HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${candidateRows(t.optimize)
          .map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
          .join('')}</tbody></table>`,
    );
    parts.push(await htmlSection(t.record, `${t.name}: profile`, 2));
  }
  await writeFileAtomic(path.join(r.outDir, 'report.html'), htmlDocument('Frugal demo', parts, r));
}

/** One line on the optimize pick of a teacher. */
export function optimizeLine(t: DemoTeacherResult): string {
  const o = t.optimize;
  const pick = o.chosen
    ? `Optimize pick (lowest energy within ${o.maxDropPoints} point of validation accuracy): ${o.chosen.pipeline}, ${o.chosen.accuracyDeltaPoints >= 0 ? '+' : ''}${o.chosen.accuracyDeltaPoints.toFixed(2)} points, ${o.chosen.latencyRatio?.toFixed(2)}× the fp32 latency, ${o.chosen.joulesPerInference === null ? 'energy n/a' : `${(o.chosen.joulesPerInference * 1000).toPrecision(3)} mJ/inference (${o.chosen.energySource})`}.`
    : `Optimize found no candidate within ${o.maxDropPoints} point of validation accuracy.`;
  const seen = o.validationUnseen === null ? 'the teacher does not record whether it saw it' : o.validationUnseen ? 'held out when the teacher was trained' : 'the teacher was trained on it, so it flatters every candidate';
  return `${pick} Accuracy here is on a validation block at the end of the training split (${seen}); the tables above use the test split.`;
}

function intro(r: DemoResult): string {
  return (
    `Each teacher model was quantized to int8 (dynamic and static), int4 and fp16, evaluated on its held-out test split, and profiled side by side at batch 1 with one ONNX Runtime thread; then frugal optimize searched pruned, distilled, linear-attention and pruned→int8 candidates for the lowest energy within 1 point of accuracy` +
    `${r.quick ? ' (quick form: fewer examples and runs)' : ''}. Energy figures say how they were obtained; where no counter is readable they are estimates.`
  );
}
