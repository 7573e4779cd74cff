/**
 * Optimize benchmark (issue 16): `npm run bench -- optimize [--json] [--only=mnist,spam] [--epochs=N] [--repeats=N]`.
 * For each embedded teacher, the whole search with its defaults (every candidate, a fresh cache, --max-drop
 * 0.5): the chosen model's energy per inference over the fp32 teacher's (both from the search's own
 * side-by-side profile, so the ratio is measured in one run; the goal on the spam teacher is ≤ 0.25), its
 * accuracy drop on the validation split the search used and, after the choice, on the full test split
 * (the search never reads it; the bench does, to check the choice holds on unseen data), the search's
 * wall time, and how many fine-tunes the cost model (and rejected prefixes) saved.
 *
 * One side-by-side profile is one draw of a noisy estimate (a lone run put the spam pick at 0.246 and,
 * rerun, 0.269), so after the search the chosen model and the teacher are profiled side by side again
 * `--repeats` times (default 5, with the search's own profiling, `profileSideBySide`): the row gives the median energy
 * and latency ratios of those repeats and their range, and the goal is judged on the median.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { intArg } from './args.js';
import { evaluateModel } from '../src/evaluation/evaluate.js';
import { encodeModelToBytes, loadModel } from '../src/onnx/index.js';
import { profileSideBySide, searchCandidates } from '../src/search/index.js';
import { median } from '../src/profiling/stats.js';

const log = (s: string) => process.stderr.write(s + '\n');
const TEACHERS = [
  { name: 'mnist', file: 'models/mnist-cnn.onnx', evalBatch: 256 },
  { name: 'spam', file: 'models/spam-transformer.onnx', evalBatch: 16 },
];

export async function optimizeBench(args: string[]): Promise<Record<string, unknown>> {
  const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
  const epochs = intArg(args, 'epochs', 1);
  const repeats = intArg(args, 'repeats', 5);
  const maxDropPoints = 0.5;
  const rows: Record<string, unknown>[] = [];
  for (const t of TEACHERS.filter((x) => !only || only.includes(x.name))) {
    const model = await loadModel(path.resolve(t.file));
    const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'frugal-bench-optimize-'));
    try {
      const r = await searchCandidates({ model, dataset: t.name, maxDropPoints, objective: 'energy', epochs, cacheDir, onProgress: (l) => log(`[${t.name}] ${l}`) });
      const ref = r.reference;
      const c = r.chosen;
      const test = async (m: typeof model) => (await evaluateModel(m, t.name, { batchSize: t.evalBatch })).accuracy;
      const refTest = await test(model);
      const chosenTest = c ? await test(c.model!) : null;
      // The search's profile, then `repeats` more side-by-side profiles of the teacher and the pick.
      const energyRatios: number[] = [];
      const latencyRatios: number[] = [];
      if (c && c.joulesPerInference && ref.joulesPerInference) energyRatios.push(c.joulesPerInference / ref.joulesPerInference);
      if (c?.latencyRatio) latencyRatios.push(c.latencyRatio);
      // Encoded once: the profiler loads each model from bytes.
      const pair = c ? [{ name: 'fp32', model: encodeModelToBytes(model) }, { name: c.pipeline, model: encodeModelToBytes(c.model!) }] : [];
      for (let k = 0; c && k < repeats; k++) {
        log(`[${t.name}] re-profiling fp32 and ${c.pipeline} side by side (${k + 1}/${repeats})`);
        const rec = await profileSideBySide(pair, t.name);
        const [a, b] = rec.models;
        if (a!.energy.joulesPerInference && b!.energy.joulesPerInference) energyRatios.push(b!.energy.joulesPerInference / a!.energy.joulesPerInference);
        latencyRatios.push(b!.latencyMs.p50 / a!.latencyMs.p50);
      }
      const spread = (xs: number[]) => (xs.length ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs.length, values: xs } : null);
      const row = {
        teacher: t.name,
        chosen: c?.pipeline ?? null,
        /** Median over the search's profile and the repeats. */
        energyRatio: energyRatios.length ? median(energyRatios) : null,
        energyRatios: spread(energyRatios),
        energySource: c?.energySource ?? null,
        latencyRatio: latencyRatios.length ? median(latencyRatios) : null,
        latencyRatios: spread(latencyRatios),
        sizeRatio: c ? c.sizeBytes! / ref.sizeBytes! : null,
        /** FLOPs per example from the cost model (the figure the search prunes fine-tunes with). */
        flops: { fp32: ref.flops ?? null, chosen: c?.flops ?? null },
        validationDropPoints: c ? -c.accuracyDeltaPoints! : null,
        testAccuracy: { fp32: refTest, chosen: chosenTest },
        testDropPoints: chosenTest === null ? null : (refTest - chosenTest) * 100,
        searchSeconds: r.searchSeconds,
        candidates: r.candidates.length,
        evaluated: r.candidates.filter((x) => x.status !== 'skipped').length,
        fineTunesSaved: r.fineTunesSaved,
        goal: t.name === 'spam' ? 'energy ratio ≤ 0.25 at ≤ 0.5 point drop' : null,
        notes: r.notes,
      };
      rows.push(row);
      log(
        `${t.name}: chosen ${row.chosen}: energy ×${row.energyRatio?.toFixed(3)} (median of ${row.energyRatios?.runs} profiles, ${row.energyRatios?.min.toFixed(3)}–${row.energyRatios?.max.toFixed(3)}; ${row.energySource}), latency ×${row.latencyRatio?.toFixed(3)}, size ×${row.sizeRatio?.toFixed(3)}, ` +
          `drop ${row.validationDropPoints?.toFixed(2)} points validation / ${row.testDropPoints?.toFixed(2)} test; search ${row.searchSeconds.toFixed(0)} s, ${row.evaluated}/${row.candidates} candidates built, ${row.fineTunesSaved} fine-tunes saved`,
      );
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }
  return { bench: 'optimize', maxDropPoints, epochs, repeats, rows };
}
