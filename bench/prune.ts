/**
 * Pruning benchmark (issue 13): `npm run bench -- prune [--json] [--only=mnist-unstructured,mnist-structured,spam,bert] [--epochs=N] [--runs=N]`.
 * Every row is measured in this run, pruned model against its original, side by side (alternating runs,
 * medians, one ORT thread). Ratios are pruned / original (< 1 is smaller or faster); `speedup` is the
 * inverse of `latencyRatio`. Accuracy is on the full held-out test split.
 *
 * - mnist-unstructured: the MNIST teacher, 90% global magnitude sparsity reached gradually (Zhu & Gupta)
 *   while fine-tuning; goal accuracy drop ≤ 0.5 point. No speedup is expected: the zeros are dense.
 * - mnist-structured: the MNIST teacher with half of every channel/unit group removed, fine-tuned; goals
 *   ≥ 2× speedup at batch 1 and batch 64 and ≤ 1 point drop.
 * - spam: the spam teacher, half its attention heads and 3/4 of its FFN neurons removed, fine-tuned one
 *   epoch at lr 1e-4 (the default 1e-3 lost accuracy while fine-tuning this transformer);
 *   goals ≥ 2× fewer FLOPs, ≥ 1.8× speedup at batch 8 (real test batches), ≤ 1 point drop.
 * - bert: the BERT-base-shaped zoo encoder, half its heads and FFN neurons removed (random weights, no
 *   accuracy): latency at batch 1, sequence 128, and FLOPs.
 */
import * as ort from 'onnxruntime-node';
import { intArg } from './args.js';
import { openDatasetFeed } from '../src/data/feed.js';
import { sideBySideLatency } from '../src/evaluation/compare.js';
import type { Model } from '../src/ir/model.js';
import { encodeModelToBytes, loadModel } from '../src/onnx/index.js';
import { runPass } from '../src/passes/pass.js';
import { structuredPrunePass, toSparseStorage } from '../src/passes/prune/index.js';
import { createSession, feedSpecsOf, randomFeeds, toOrtTensor } from '../src/runtime/index.js';
import { cloneModel, costOf, pruneModel, type PruneResult } from '../src/training/index.js';
import { buildZooModel } from '../src/zoo/index.js';

const log = (s: string) => process.stderr.write(s + '\n');

async function latency(before: Model, after: Model, feeds: Record<string, ort.Tensor>, runs: number): Promise<{ latencyRatio: number; speedup: number; beforeMs: number; afterMs: number }> {
  const a = await createSession(before, { intraOpThreads: 1, name: 'original' });
  const b = await createSession(after, { intraOpThreads: 1, name: 'pruned' });
  try {
    const r = await sideBySideLatency(a, b, feeds, runs, 5);
    return { latencyRatio: r.ratio, speedup: 1 / r.ratio, beforeMs: r.referenceMs, afterMs: r.candidateMs };
  } finally {
    await a.release();
    await b.release();
  }
}

/** Real test examples 0..n-1 of `dataset` as feeds. */
function dataFeeds(model: Model, dataset: string, n: number): Record<string, ort.Tensor> {
  const feed = openDatasetFeed(dataset, model, { evalOnly: true, testLimit: n });
  return feed.batch('test', Array.from({ length: n }, (_, i) => i)).feeds;
}

function seqOf(feeds: Record<string, ort.Tensor>): number | undefined {
  const t = Object.values(feeds).find((x) => x.dims.length === 2 && x.type === 'int64');
  return t ? Number(t.dims[1]) : undefined;
}

function summary(r: PruneResult): Record<string, unknown> {
  const acc = r.accuracy!;
  return {
    accuracyBefore: acc.before,
    accuracyAfterPruning: acc.afterPruning,
    accuracyAfterFineTune: acc.afterFineTune,
    accuracyDropPoints: 100 * (acc.before - acc.afterFineTune!),
    sparsity: r.sparsity,
    paramRatio: r.parameterCount.after / r.parameterCount.before,
    fineTune: r.fineTune,
    groups: r.stats.groups,
  };
}

function show(name: string, row: Record<string, unknown>): void {
  const f = (k: string, d = 3) => (typeof row[k] === 'number' ? (row[k] as number).toFixed(d) : String(row[k] ?? '—'));
  log(`${name}: drop ${f('accuracyDropPoints', 2)} pt, latency ${f('latencyRatio')} (speedup ${f('speedup', 2)}×)${row.latencyRatioBatch64 !== undefined ? `, batch 64 ${f('latencyRatioBatch64')}` : ''}, FLOPs ${f('flopsRatio')}, params ${f('paramRatio')}`);
}

export async function pruneBench(args: string[]): Promise<Record<string, unknown>> {
  const only = (args.find((a) => a.startsWith('--only='))?.slice(7) ?? 'mnist-unstructured,mnist-structured,spam,bert').split(',');
  const epochs = intArg(args, 'epochs', 2);
  const runs = intArg(args, 'runs', 40);
  const out: Record<string, unknown> = { epochs, runs, threads: 1 };
  const phase = (l: string) => log(`  ${l}`);

  if (only.includes('mnist-unstructured') || only.includes('mnist-structured')) {
    const teacher = await loadModel('models/mnist-cnn.onnx');
    const b1 = dataFeeds(teacher, 'mnist', 1);
    const b64 = dataFeeds(teacher, 'mnist', 64);
    const cost = (m: Model) => costOf(m, { batch: 1 });
    if (only.includes('mnist-unstructured')) {
      log('mnist-unstructured: 90% global magnitude, gradual over fine-tuning');
      const r = await pruneModel(teacher, { method: 'magnitude', sparsity: 0.9, scope: 'global', dataset: 'mnist', epochs, onPhase: phase });
      const l1 = await latency(teacher, r.model, b1, runs);
      const l64 = await latency(teacher, r.model, b64, runs);
      const sparse = cloneModel(r.model);
      await toSparseStorage(sparse);
      const row = {
        ...summary(r),
        latencyRatio: l1.latencyRatio,
        speedup: l1.speedup,
        latencyRatioBatch64: l64.latencyRatio,
        flopsRatio: cost(r.model).flops! / cost(teacher).flops!,
        sparseStorageSizeRatio: encodeModelToBytes(sparse).byteLength / encodeModelToBytes(teacher).byteLength,
        note: 'unstructured zeros are dense tensors: no CPU speedup',
      };
      show('mnist-unstructured', row);
      out['mnist-unstructured'] = row;
    }
    if (only.includes('mnist-structured')) {
      log('mnist-structured: half of every channel/unit group removed, fine-tuned');
      const r = await pruneModel(teacher, { method: 'structured', ratio: 0.5, dataset: 'mnist', epochs, onPhase: phase });
      const l1 = await latency(teacher, r.model, b1, runs);
      const l64 = await latency(teacher, r.model, b64, runs);
      const row = { ...summary(r), latencyRatio: l1.latencyRatio, speedup: l1.speedup, latencyRatioBatch64: l64.latencyRatio, speedupBatch64: l64.speedup, flopsRatio: r.flops.after! / r.flops.before! };
      show('mnist-structured', row);
      out['mnist-structured'] = row;
    }
  }

  if (only.includes('spam')) {
    log('spam: half the heads and 3/4 of the FFN neurons removed, fine-tuned');
    const teacher = await loadModel('models/spam-transformer.onnx');
    const b8 = dataFeeds(teacher, 'spam', 8);
    const seq = seqOf(b8) ?? 128;
    const r = await pruneModel(teacher, { method: 'structured', ratio: 0.75, headRatio: 0.5, dataset: 'spam', epochs: 1, lr: 1e-4, onPhase: phase });
    const l8 = await latency(teacher, r.model, b8, runs);
    const dims = { batch: 1, seq };
    const row = { ...summary(r), latencyRatio: l8.latencyRatio, speedup: l8.speedup, batch: 8, seq, flopsRatio: costOf(r.model, dims).flops! / costOf(teacher, dims).flops! };
    show('spam', row);
    out.spam = row;
  }

  if (only.includes('bert')) {
    log('bert: BERT-base-shaped zoo encoder, half the heads and FFN neurons removed');
    const bert = buildZooModel('bert-base');
    const pruned = (await runPass(structuredPrunePass({ ratio: 0.5, checkRuntime: false }), cloneModel(bert))).model;
    const dims = { batch: 1, seq: 128 };
    const feeds = Object.fromEntries(Object.entries(randomFeeds(feedSpecsOf(bert), { seed: 1, dims, intRanges: { input_ids: [0, 30522] } })).map(([k, t]) => [k, toOrtTensor(t)]));
    const l = await latency(bert, pruned, feeds, Math.min(runs, 15));
    const before = costOf(bert, dims);
    const after = costOf(pruned, dims);
    const row = { latencyRatio: l.latencyRatio, speedup: l.speedup, beforeMs: l.beforeMs, afterMs: l.afterMs, flopsRatio: after.flops! / before.flops!, paramRatio: after.parameterCount / before.parameterCount, batch: 1, seq: 128 };
    show('bert', row);
    out.bert = row;
  }
  return out;
}
