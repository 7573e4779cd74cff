import { compareModels } from '../../evaluation/compare.js';
import { DATASETS } from '../../data/index.js';
import { defineCommand } from '../command.js';
import { formatBytes, formatNumber, table } from '../../report/format.js';

const JSON_KEYS = [
  'JSON keys: reference/candidate {path, bytes}; sizeRatio (candidate/reference bytes, external data included);',
  '  inputSource (dataset:NAME, files:FOLDER or random); samples; outputs[] {name, elements, maxRelativeError',
  '  (max|c-r|/max|r|), meanRelativeError (mean|c-r|/mean|r|), cosineSimilarity, top1Agreement (arg-max of',
  '  [batch, classes] outputs; null for other shapes)}; the same four keys at top level (worst over outputs);',
  '  accuracy {reference, candidate, dropPoints, count} or null; latency {referenceMs, candidateMs, ratio,',
  '  ratioLow, ratioHigh (~95% interval), verdict (faster|slower|within noise), runs} (medians of alternating',
  '  runs on one sample) or null.',
];

export const compareCommand = defineCommand({
  name: 'compare',
  usage: 'frugal compare <reference.onnx> <candidate.onnx> [--dataset mnist|spam | --inputs <folder>] [--limit N] [--json]',
  positionals: [2, 2],
  options: {
    dataset: { type: 'choice', choices: Object.keys(DATASETS), conflicts: ['inputs'], description: 'real labelled inputs: also compares accuracy' },
    inputs: { type: 'string', arg: 'folder', description: 'folder of .pb input tensors (or test_data_set_*/ sub-folders)' },
    limit: { type: 'int', min: 1, description: 'dataset examples to use (default 1000)' },
    runs: { type: 'int', min: 0, default: 20, description: 'timed runs per model for the latency ratio (0 skips)' },
    threads: { type: 'int', min: 1, description: 'ONNX Runtime intra-op threads' },
  },
  examples: [
    'frugal compare model.onnx model_quantized.onnx --dataset mnist',
    'frugal compare model.onnx model_fp16.onnx --inputs test_data/ --json',
    '',
    ...JSON_KEYS,
  ],
  async run(ctx) {
    const v = ctx.values;
    const [reference, candidate] = ctx.positionals as [string, string];
    const r = await compareModels(reference, candidate, {
      ...(v.dataset !== undefined ? { dataset: v.dataset } : {}),
      ...(v.inputs !== undefined ? { inputs: v.inputs } : {}),
      ...(v.limit !== undefined ? { limit: v.limit } : {}),
      latencyRuns: v.runs,
      ...(v.threads !== undefined ? { intraOpThreads: v.threads } : {}),
      onProgress: ctx.progress,
    });
    if (ctx.json) {
      ctx.out(JSON.stringify(r, null, 2));
      return;
    }
    // Errors to three significant figures (a fixed 4 decimals printed 0.0000 for fp16's 1e-5 errors);
    // cosine keeps 6 decimals, since its information is in how close to 1 it is.
    const f = (x: number, d?: number) => (!Number.isFinite(x) ? String(x) : d === undefined ? formatNumber(x) : x.toFixed(d));
    ctx.out(`size: ${formatBytes(r.reference.bytes)} → ${formatBytes(r.candidate.bytes)} (${f(r.sizeRatio)}×)`);
    ctx.out(`inputs: ${r.inputSource}, ${r.samples} sample(s)`);
    // Top-1 agreement only means something for class scores; for other outputs the column is left out.
    const classes = r.outputs.some((o) => o.top1Agreement !== null);
    ctx.out(
      table(
        ['output', 'max rel. error', 'mean rel. error', 'cosine', ...(classes ? ['top-1 agreement'] : [])],
        r.outputs.map((o) => [
          o.name,
          f(o.maxRelativeError),
          f(o.meanRelativeError),
          f(o.cosineSimilarity, 6),
          ...(classes ? [o.top1Agreement === null ? 'n/a (not class scores)' : `${(100 * o.top1Agreement).toFixed(2)}%`] : []),
        ]),
      ).trimEnd(),
    );
    if (r.accuracy) {
      const a = r.accuracy;
      ctx.out(`accuracy: ${(100 * a.reference).toFixed(2)}% → ${(100 * a.candidate).toFixed(2)}% (${a.dropPoints >= 0 ? '−' : '+'}${Math.abs(a.dropPoints).toFixed(2)} points, ${a.count} examples)`);
    }
    if (r.latency) {
      const l = r.latency;
      const sig = (x: number): string => x.toPrecision(3);
      ctx.out(
        `latency: ${sig(l.referenceMs)} ms → ${sig(l.candidateMs)} ms: ${l.verdict === 'within noise' ? 'within noise' : `${sig(l.ratio)}×, ${l.verdict}`} (ratio ${sig(l.ratio)}×, 95% interval ${sig(l.ratioLow)}–${sig(l.ratioHigh)}×; medians of ${l.runs} alternating runs)`,
      );
    }
  },
});
