import { compareModels } from '../../evaluation/compare.js';
import { DATASETS } from '../../data/index.js';
import { defineCommand } from '../command.js';
import { formatBytes, table } from '../../report/format.js';

const JSON_KEYS = [
  'JSON keys: reference/candidate {path, bytes}; sizeRatio (candidate/reference bytes, external data included);',
  '  inputSource (dataset:NAME, files:FOLDER or random); samples; outputs[] {name, elements, maxRelativeError',
  '  (max|c-r|/max|r|), meanRelativeError (mean|c-r|/mean|r|), cosineSimilarity, top1Agreement (arg-max over',
  '  the last axis; null without a class axis)}; the same four keys at top level (worst over outputs);',
  '  accuracy {reference, candidate, dropPoints, count} or null; latency {referenceMs, candidateMs, ratio, runs}',
  '  (medians of alternating runs on one sample) or null.',
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
    const f = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
    ctx.out(`size: ${formatBytes(r.reference.bytes)} → ${formatBytes(r.candidate.bytes)} (${f(r.sizeRatio, 3)}×)`);
    ctx.out(`inputs: ${r.inputSource}, ${r.samples} sample(s)`);
    ctx.out(
      table(
        ['output', 'max rel. error', 'mean rel. error', 'cosine', 'top-1 agreement'],
        r.outputs.map((o) => [o.name, f(o.maxRelativeError), f(o.meanRelativeError), f(o.cosineSimilarity, 6), o.top1Agreement === null ? '-' : `${(100 * o.top1Agreement).toFixed(2)}%`]),
      ).trimEnd(),
    );
    if (r.accuracy) {
      const a = r.accuracy;
      ctx.out(`accuracy: ${(100 * a.reference).toFixed(2)}% → ${(100 * a.candidate).toFixed(2)}% (${a.dropPoints >= 0 ? '−' : '+'}${Math.abs(a.dropPoints).toFixed(2)} points, ${a.count} examples)`);
    }
    if (r.latency) {
      const l = r.latency;
      ctx.out(`latency: ${l.referenceMs.toFixed(3)} ms → ${l.candidateMs.toFixed(3)} ms (${l.ratio.toFixed(3)}×, medians of ${l.runs} alternating runs)`);
    }
  },
});
