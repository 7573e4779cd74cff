/**
 * What `frugal optimize` writes: the chosen model, every Pareto-front member, and report.json / .md /
 * .html (with the accuracy/objective chart and the standard efficiency metrics). Every file is written
 * atomically, and only once the search has finished, so a failed or interrupted search leaves nothing
 * half-written in the output folder.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { saveModel, writeFileAtomic } from '../onnx/index.js';
import { escapeHtml as esc, htmlDocument, htmlSection } from '../report/html.js';
import { renderSvg } from '../report/charts.js';
import { formatBytes } from '../report/format.js';
import { markdownReport } from '../report/markdown.js';
import type { CandidateResult, Objective, SearchResult } from './optimize.js';
import { objectiveValue } from './optimize.js';
import { type SearchSplits, validationUnseen } from './validation.js';

/** The chosen candidate as the JSON report gives it. */
export interface ChosenSummary {
  pipeline: string;
  file: string;
  accuracy: number;
  accuracyDeltaPoints: number;
  latencyRatio: number | null;
  joulesPerInference: number | null;
  energySource: string;
  sizeBytes: number;
}

/** One candidate in the JSON report (no model object). */
export type CandidateSummary = Omit<CandidateResult, 'model'> & { file?: string };

export interface OptimizeReport {
  input: string;
  dataset: string;
  objective: Objective;
  maxDropPoints: number;
  validation: string;
  /** Whether the model's recorded training data (`frugal.trainedOn`) stops before the validation block; null when the model does not record it. */
  validationUnseen: boolean | null;
  reference: CandidateSummary;
  chosen: ChosenSummary | null;
  front: CandidateSummary[];
  candidates: CandidateSummary[];
  fineTunesSaved: number;
  searchSeconds: number;
  notes: string[];
  carbon: { region: string; gCo2ePerKwh: number; source: string } | null;
  outDir: string;
}

/** File name of a front member: the pipeline id made safe for every filesystem (`+` → `_`). */
export const memberFile = (pipeline: string): string => `model_${pipeline.replace(/[^A-Za-z0-9.-]+/g, '_')}.onnx`;

/** Writes the models and reports; returns the JSON report. */
export async function writeSearchOutputs(r: SearchResult, outDir: string, input: string): Promise<OptimizeReport> {
  mkdirSync(outDir, { recursive: true });
  const files = new Map<CandidateResult, string>();
  const write = async (c: CandidateResult, name: string): Promise<string> => {
    const file = path.join(outDir, name);
    await saveModel(c.model!, file, { externalData: false, protect: [input] });
    return file;
  };
  for (const c of r.front) if (c.pipeline !== 'fp32') files.set(c, await write(c, memberFile(c.pipeline)));
  let chosen: ChosenSummary | null = null;
  if (r.chosen) {
    const file = await write(r.chosen, 'model_optimized.onnx');
    const c = r.chosen;
    chosen = { pipeline: c.pipeline, file, accuracy: c.accuracy!, accuracyDeltaPoints: c.accuracyDeltaPoints!, latencyRatio: c.latencyRatio ?? null, joulesPerInference: c.joulesPerInference ?? null, energySource: c.energySource ?? 'none', sizeBytes: c.sizeBytes! };
  }
  const summary = (c: CandidateResult): CandidateSummary => {
    const { model: _m, ...rest } = c;
    const file = files.get(c);
    return { ...rest, ...(file ? { file } : {}) };
  };
  const report: OptimizeReport = {
    input,
    dataset: r.dataset,
    objective: r.objective,
    maxDropPoints: r.maxDropPoints,
    validation: `training examples [${r.splits.validationStart}, ${r.splits.trainCount}) of ${r.dataset} (fine-tuning and calibration use [0, ${r.splits.trainLimit})); the test split is not read; ${seenBy(r.splits)}`,
    validationUnseen: validationUnseen(r.splits),
    reference: summary(r.reference),
    chosen,
    front: r.front.map(summary),
    candidates: r.candidates.map(summary),
    fineTunesSaved: r.fineTunesSaved,
    searchSeconds: r.searchSeconds,
    notes: r.notes,
    carbon: r.record ? { region: r.record.carbon.region, gCo2ePerKwh: r.record.carbon.gCo2ePerKwh, source: r.record.carbon.source } : null,
    outDir,
  };
  await writeFileAtomic(path.join(outDir, 'report.json'), JSON.stringify({ ...report, record: r.record }, null, 2));
  await writeFileAtomic(path.join(outDir, 'report.md'), optimizeMarkdown(report, r));
  await writeFileAtomic(path.join(outDir, 'report.html'), await optimizeHtml(report, r));
  return report;
}

/** Whether the model's own training data reaches into the validation block, from its frugal.trainedOn metadata. */
function seenBy(sp: SearchSplits): string {
  const unseen = validationUnseen(sp);
  if (unseen === null) return 'the model does not record which training examples it saw';
  return unseen
    ? `unseen by the model (trained on the first ${sp.modelTrainedOn} training examples)`
    : `overlapping the model's own training data (first ${sp.modelTrainedOn} examples): validation accuracy flatters it`;
}

const pct = (x: number | undefined): string => (x === undefined ? '' : `${(x * 100).toFixed(2)}%`);
const num = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined ? 'n/a' : x.toPrecision(digits));

export const CANDIDATE_HEADER = ['pipeline', 'status', 'val. accuracy', 'Δ points', 'size KiB', 'p50 ratio', 'mJ/inference', 'energy source', 'front', 'note'];

/** The candidate table's rows (reference first). */
export function candidateRows(rep: OptimizeReport): string[][] {
  return [rep.reference, ...rep.candidates].map((c) => [
    c.pipeline + (c.cached ? ' (cached)' : ''),
    c.pipeline === 'fp32' ? 'reference' : c.status + (c.skippedBy ? ` (${c.skippedBy})` : ''),
    pct(c.accuracy),
    c.accuracyDeltaPoints === undefined || c.pipeline === 'fp32' ? '' : `${c.accuracyDeltaPoints >= 0 ? '+' : ''}${c.accuracyDeltaPoints.toFixed(2)}`,
    c.sizeBytes === undefined ? '' : (c.sizeBytes / 1024).toFixed(0),
    c.latencyRatio === undefined ? '' : `${c.latencyRatio.toFixed(2)}×`,
    c.joulesPerInference === undefined ? '' : num(c.joulesPerInference === null ? null : c.joulesPerInference * 1000),
    c.energySource ?? '',
    c.pareto ? 'yes' : '',
    c.reason ?? '',
  ]);
}

export const EFFICIENCY_HEADER = ['model', 'J/inference', 'Wh per 1,000', 'gCO2e per 1,000', 'rating (1–5)', 'label'];

/** The standard efficiency metrics of the profiled models, each row labelled measured or estimated. */
export function efficiencyRows(rep: OptimizeReport): string[][] {
  return [rep.reference, ...rep.candidates]
    .filter((c) => c.energySource !== undefined)
    .map((c) => [c.pipeline, num(c.joulesPerInference), num(c.whPer1000), num(c.gCo2ePer1000), c.rating === null || c.rating === undefined ? 'n/a' : String(c.rating), c.energySource!.includes('estimated') ? `estimated (${c.energySource})` : `measured (${c.energySource})`]);
}

function headline(rep: OptimizeReport): string {
  if (!rep.chosen) return `No candidate stays within ${rep.maxDropPoints} accuracy points of the reference; the Pareto front is listed below.`;
  const c = rep.chosen;
  return `Chosen: ${c.pipeline}: validation accuracy ${pct(c.accuracy)} (${c.accuracyDeltaPoints >= 0 ? '+' : ''}${c.accuracyDeltaPoints.toFixed(2)} points), ${num(c.joulesPerInference === null ? null : c.joulesPerInference * 1000)} mJ/inference (${c.energySource}), latency ${c.latencyRatio?.toFixed(2)}× the reference's, ${formatBytes(c.sizeBytes)}.`;
}

function intro(rep: OptimizeReport): string {
  return `Objective: lowest ${rep.objective} within ${rep.maxDropPoints} points of validation accuracy. Validation: ${rep.validation}. Search took ${rep.searchSeconds.toFixed(1)} s; the cost model and rejected prefixes saved ${rep.fineTunesSaved} fine-tune(s).`;
}

const carbonLine = (rep: OptimizeReport): string => (rep.carbon ? `Carbon at ${rep.carbon.gCo2ePerKwh} gCO2e/kWh (${rep.carbon.region}: ${rep.carbon.source}).` : '');

function optimizeMarkdown(rep: OptimizeReport, r: SearchResult): string {
  const t = (h: string[], rows: string[][]): string[] => [`| ${h.join(' | ')} |`, `|${h.map(() => '---').join('|')}|`, ...rows.map((x) => `| ${x.join(' | ')} |`)];
  const md = ['# Frugal optimize', '', headline(rep), '', intro(rep), '', ...rep.notes.map((n) => `> Note: ${n}`), '', '## Candidates', '', ...t(CANDIDATE_HEADER, candidateRows(rep)), ''];
  md.push('## Efficiency metrics', '', carbonLine(rep), '', ...t(EFFICIENCY_HEADER, efficiencyRows(rep)), '');
  if (r.record) md.push(markdownReport(r.record, 'Profile').replace(/^# /m, '## '), '');
  return md.join('\n');
}

/** Accuracy against the objective, front members highlighted. */
async function paretoChart(rep: OptimizeReport): Promise<string | null> {
  const all = [rep.reference, ...rep.candidates];
  const values = all
    .map((c) => ({ model: c.pipeline, accuracy: c.accuracy, cost: objectiveValue(c as CandidateResult, rep.objective), front: c.pareto ? 'Pareto front' : 'dominated' }))
    .filter((v) => v.accuracy !== undefined && v.cost !== null && v.cost > 0);
  if (values.length === 0) return null;
  const title = rep.objective === 'energy' ? 'joules per inference' : rep.objective === 'latency' ? 'p50 latency (ms)' : 'file size (bytes)';
  return renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Validation accuracy against ${rep.objective}`,
    width: 560,
    height: 320,
    data: { values },
    encoding: {
      x: { field: 'cost', type: 'quantitative', title, scale: { type: 'log' } },
      y: { field: 'accuracy', type: 'quantitative', title: 'validation accuracy', scale: { zero: false } },
      color: { field: 'front', type: 'nominal', title: null },
    },
    layer: [{ mark: { type: 'point', filled: true, size: 80 } }, { mark: { type: 'text', dx: 8, align: 'left', fontSize: 10 }, encoding: { text: { field: 'model' } } }],
  });
}

async function optimizeHtml(rep: OptimizeReport, r: SearchResult): Promise<string> {
  const table = (h: string[], rows: string[][]): string =>
    `<table><thead><tr>${h.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows.map((x) => `<tr>${x.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  const chart = await paretoChart(rep);
  const parts = [
    `<h1>Frugal optimize</h1><p><strong>${esc(headline(rep))}</strong></p><p>${esc(intro(rep))}</p>${rep.notes.map((n) => `<p class="est">Note: ${esc(n)}</p>`).join('')}`,
    chart ? `<figure class="chart" id="chart-pareto">${chart}</figure>` : '',
    `<h2>Candidates</h2>${table(CANDIDATE_HEADER, candidateRows(rep))}`,
    `<h2>Efficiency metrics</h2><p>${esc(carbonLine(rep))}</p>${table(EFFICIENCY_HEADER, efficiencyRows(rep))}`,
  ];
  if (r.record) parts.push(await htmlSection(r.record, 'Profile', 2));
  return htmlDocument('Frugal optimize', parts, rep);
}
