import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { loadModel } from '../../onnx/index.js';
import { CANDIDATES, OBJECTIVES, searchCandidates, selectCandidates, SEARCH_DEFAULTS, writeSearchOutputs } from '../../search/index.js';
import { candidateRows, CANDIDATE_HEADER, efficiencyRows, EFFICIENCY_HEADER } from '../../search/optimize-report.js';
import { defineCommand } from '../command.js';
import { formatBytes, table } from '../../report/format.js';

const UNITS: Readonly<Record<string, number>> = Object.freeze({ s: 1, m: 60, h: 3600 });

/** `90s`, `10m`, `1.5h` or a bare number of seconds → seconds; an E_USAGE error naming --budget otherwise. */
export function parseBudget(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smh]?)$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * UNITS[m[2] || 's']! : NaN;
  if (!(seconds > 0 && Number.isFinite(seconds))) throw new FrugalError('E_USAGE', `--budget must be a positive duration such as 90s, 10m or 1h, got '${text}'`);
  return seconds;
}

export const optimizeCommand = defineCommand({
  name: 'optimize',
  usage: 'frugal optimize <model.onnx> --dataset mnist|spam --max-drop POINTS [--objective energy|latency|size] [--budget 10m] [--out DIR] [--require] [--json]',
  positionals: [1, 1],
  options: {
    dataset: { type: 'choice', choices: Object.keys(SEARCH_DEFAULTS), required: true, description: 'data to validate on (a validation block carved from the end of its training split; the test split is never read)' },
    'max-drop': { type: 'number', min: 0, required: true, arg: 'POINTS', description: 'largest allowed drop in validation accuracy, in points (1 = one percentage point)' },
    objective: { type: 'choice', choices: OBJECTIVES, default: 'energy', description: 'what the chosen model minimises' },
    budget: { type: 'string', arg: 'DURATION', description: 'stop trying candidates after this long (90s, 10m, 1h) and return the best so far' },
    out: { type: 'string', short: 'o', arg: 'DIR', default: 'frugal-optimize', description: 'where to write model_optimized.onnx, the front members and report.{md,html,json}' },
    cache: { type: 'string', arg: 'DIR', description: 'candidate cache, so a rerun or resumed search does not retrain (default <out>/.frugal-cache)' },
    require: { type: 'boolean', description: 'exit 1 when no candidate stays within --max-drop (default: exit 0 with a message)' },
    candidates: { type: 'string', multiple: true, arg: 'ID', description: `try only these pipelines (default all: ${CANDIDATES.map((c) => c.id).join(', ')})` },
    epochs: { type: 'int', min: 1, default: 1, description: 'fine-tuning / distillation epochs per training candidate' },
    'train-limit': { type: 'int', min: 1, description: 'fine-tuning examples from the start of the training split (default mnist 2000, spam 256)' },
    validation: { type: 'int', min: 1, description: 'validation examples from the end of the training split (default mnist 1000, spam 400)' },
    'profile-seconds': { type: 'number', min: 0, exclusiveMin: true, default: 1, description: 'measured seconds per model when profiling' },
    seed: { type: 'int', min: 0, default: 0, description: 'seed of fine-tuning and students (part of the cache key)' },
    threads: { type: 'int', min: 1, description: 'ONNX Runtime intra-op threads for training and evaluation' },
  },
  examples: [
    'frugal optimize models/mnist-cnn.onnx --dataset mnist --max-drop 1',
    'frugal optimize models/spam-transformer.onnx --dataset spam --max-drop 0.5 --objective latency --budget 10m --out spam-opt',
    'frugal optimize model.onnx --dataset mnist --max-drop 0.5 --objective size --candidates int8-dynamic --candidates structured-0.25 --json',
    'frugal optimize model.onnx --dataset mnist --max-drop 0.1 --require   # exit 1 when nothing qualifies',
    '',
    'Candidates are tried cheapest first; a fine-tune that the cost model (FLOPs, or bytes for --objective size)',
    'shows cannot beat the best so far is skipped. Energy is measured where a counter is readable, else estimated:',
    'every figure says which.',
  ],
  async run(ctx) {
    const v = ctx.values;
    const input = ctx.positionals[0]!;
    if (!existsSync(input) || !statSync(input).isFile()) throw new FrugalError('E_USAGE', `model '${input}' is not an existing file`);
    const budgetSeconds = v.budget !== undefined ? parseBudget(v.budget) : undefined;
    const candidates = selectCandidates(v.candidates);
    const outDir = path.resolve(v.out);
    if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new FrugalError('E_USAGE', `--out '${v.out}' is a file; give a folder for the chosen model and the reports`);
    ctx.progress(`reading ${input}`);
    const model = await loadModel(input);
    const r = await searchCandidates({
      model,
      dataset: v.dataset,
      maxDropPoints: v['max-drop'],
      objective: v.objective,
      candidates,
      cacheDir: path.resolve(v.cache ?? path.join(outDir, '.frugal-cache')),
      epochs: v.epochs,
      seed: v.seed,
      profileSeconds: v['profile-seconds'],
      ...(budgetSeconds !== undefined ? { budgetSeconds } : {}),
      ...(v['train-limit'] !== undefined ? { trainLimit: v['train-limit'] } : {}),
      ...(v.validation !== undefined ? { validationCount: v.validation } : {}),
      ...(v.threads ? { intraOpThreads: v.threads } : {}),
      onProgress: (line) => ctx.progress(line),
    });
    ctx.progress(`writing ${outDir}`);
    const rep = await writeSearchOutputs(r, outDir, path.resolve(input));
    const failed = rep.chosen === null && v.require;
    if (ctx.json) {
      ctx.out(JSON.stringify(rep, null, 2));
      return failed ? 1 : 0;
    }
    ctx.out(table(CANDIDATE_HEADER, candidateRows(rep)));
    ctx.out('');
    ctx.out(`Efficiency (batch 1, 1 thread; carbon at ${rep.carbon?.gCo2ePerKwh ?? '?'} gCO2e/kWh, ${rep.carbon?.region ?? '?'}):`);
    ctx.out(table(EFFICIENCY_HEADER, efficiencyRows(rep)));
    for (const n of rep.notes) ctx.out(`note: ${n}`);
    if (rep.chosen) {
      const c = rep.chosen;
      ctx.out(`chosen: ${c.pipeline}: ${(c.accuracy * 100).toFixed(2)}% validation accuracy (${c.accuracyDeltaPoints >= 0 ? '+' : ''}${c.accuracyDeltaPoints.toFixed(2)} points), ${c.joulesPerInference === null ? 'energy n/a' : `${(c.joulesPerInference * 1000).toPrecision(3)} mJ/inference (${c.energySource})`}, latency ${c.latencyRatio?.toFixed(2)}×, ${formatBytes(c.sizeBytes)}`);
      ctx.out(`wrote ${c.file}`);
    } else {
      const tried = rep.candidates.some((c) => c.status !== 'skipped');
      ctx.out(tried ? `no candidate stays within --max-drop ${rep.maxDropPoints}; the front is in the report` : 'no candidate was tried within the time budget; raise --budget');
    }
    ctx.out(`search took ${rep.searchSeconds.toFixed(1)} s; the cost model saved ${rep.fineTunesSaved} fine-tune(s). Report: ${path.join(outDir, 'report.html')}`);
    return failed ? 1 : 0;
  },
});
