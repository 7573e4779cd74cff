import { existsSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import { encodeModelToBytes, loadModel, saveModel } from '../../onnx/index.js';
import { buildZooModel, ZOO, zooNames } from '../../zoo/index.js';
import { modelDiskBytes, sideBySideLatency } from '../../evaluation/compare.js';
import { IMPORTANCE_KINDS, parsePattern, toSparseStorage } from '../../passes/prune/index.js';
import { createSession, feedSpecsOf, randomFeeds, toOrtTensor } from '../../runtime/index.js';
import { PRUNE_METHODS, type PruneMethod, pruneModel } from '../../training/index.js';
import { DATASETS } from '../../data/index.js';
import { defineCommand } from '../command.js';
import { formatBytes } from '../../report/format.js';

/**
 * Median latency of the pruned model over the original's on the same random batch, one thread, runs
 * alternated (evaluation/compare.ts): < 1 is faster.
 */
export async function latencyRatio(before: Model, after: Model, opts: { batch?: number; runs?: number } = {}): Promise<{ ratio: number; beforeMs: number; afterMs: number; batch: number }> {
  const batch = opts.batch ?? 1;
  const specs = feedSpecsOf(before);
  const dims: Record<string, number> = {};
  for (const s of specs) for (const d of s.shape ?? []) if (typeof d === 'string') dims[d] = /seq|len|token|time/i.test(d) ? 128 : batch;
  const feeds = Object.fromEntries(Object.entries(randomFeeds(specs, { seed: 1, dims })).map(([k, t]) => [k, toOrtTensor(t)]));
  const a = await createSession(before, { intraOpThreads: 1, name: 'original' });
  const b = await createSession(after, { intraOpThreads: 1, name: 'pruned' });
  try {
    const r = await sideBySideLatency(a, b, feeds, opts.runs ?? 30);
    return { ratio: r.ratio, beforeMs: r.referenceMs, afterMs: r.candidateMs, batch };
  } finally {
    await a.release();
    await b.release();
  }
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

export const pruneCommand = defineCommand({
  name: 'prune',
  usage: 'frugal prune <model.onnx | zoo name> --method magnitude|nm|structured -o <out.onnx> [--sparsity 0.9] [--pattern 2:4] [--ratio 0.5] [--importance l1|l2|taylor] [--dataset mnist|spam --epochs N] [--sparse-storage] [--json]',
  positionals: [1, 1],
  options: {
    output: { type: 'string', short: 'o', arg: 'out.onnx', required: true, description: 'where to write the pruned model' },
    method: { type: 'choice', choices: PRUNE_METHODS, required: true, description: 'magnitude: zero the smallest weights; nm: keep N of every M; structured: remove channels/units/heads' },
    sparsity: { type: 'number', description: 'magnitude: fraction of prunable weights to zero, in [0, 1) (default 0.5)' },
    scope: { type: 'choice', choices: ['layer', 'global'], description: 'magnitude: one threshold per layer (default) or over all layers' },
    'include-embeddings': { type: 'boolean', description: 'magnitude/nm: prune embedding tables (Gather data) too' },
    pattern: { type: 'string', arg: 'N:M', description: 'nm: keep N of every M weights along the reduction axis (default 2:4)' },
    ratio: { type: 'number', description: 'structured: fraction of channels/units/heads to remove per group, in [0, 1) (default 0.5)' },
    'head-ratio': { type: 'number', description: 'structured: fraction of attention heads to remove (default --ratio)' },
    target: { type: 'choice', choices: ['all', 'channels', 'heads'], description: 'structured: what to remove (default all)' },
    importance: { type: 'choice', choices: IMPORTANCE_KINDS, description: 'structured: channel importance (default l1; taylor needs --dataset)' },
    dataset: { type: 'choice', choices: Object.keys(DATASETS), description: 'measure accuracy, and fine-tune with --epochs' },
    epochs: { type: 'int', min: 0, description: 'fine-tuning epochs (default 0: no fine-tuning); magnitude pruning is then gradual' },
    steps: { type: 'int', min: 1, description: 'fine-tuning steps (overrides --epochs)' },
    lr: { type: 'number', min: 0, exclusiveMin: true, description: 'fine-tuning learning rate (default 1e-3, AdamW)' },
    distill: { type: 'boolean', description: 'fine-tune by distillation from the unpruned model (soft targets at T=2 plus labels)' },
    'one-shot': { type: 'boolean', description: 'magnitude with fine-tuning: prune once, then fine-tune under fixed masks (default: gradual)' },
    exclude: { type: 'string', multiple: true, arg: 'NAME', description: 'leave this weight or layer alone (structured: the layer named in the report)' },
    'sparse-storage': { type: 'boolean', description: 'store large pruned weights as ONNX sparse initializers (smaller file; ORT densifies them at load)' },
    limit: { type: 'int', min: 1, description: 'use only the first N training examples' },
    'eval-limit': { type: 'int', min: 1, description: 'score only the first N test examples' },
    threads: { type: 'int', min: 1, description: 'ONNX Runtime intra-op threads for training and evaluation' },
  },
  examples: [
    'frugal prune models/mnist-cnn.onnx --method structured --ratio 0.5 --dataset mnist --epochs 2 -o cnn-pruned.onnx',
    'frugal prune models/mnist-cnn.onnx --method magnitude --sparsity 0.9 --scope global --dataset mnist --epochs 3 --sparse-storage -o cnn-sparse.onnx',
    'frugal prune model.onnx --method nm --pattern 2:4 -o model-24.onnx --json',
    'frugal prune bert-base --method structured --ratio 0.5 --target heads -o bert-half-heads.onnx',
    'frugal prune models/spam-transformer.onnx --method structured --ratio 0.5 --importance taylor --dataset spam --epochs 1 -o spam-small.onnx',
    '',
    'Unstructured and N:M zeros are stored densely: no speedup on a CPU (N:M runs faster only on GPU sparse',
    'tensor cores). Structured pruning removes the work itself: smaller, faster dense kernels everywhere.',
  ],
  async run(ctx) {
    const v = ctx.values;
    const input = ctx.positionals[0]!;
    const method = v.method;
    const only = (flags: Array<keyof typeof v>, m: PruneMethod) => {
      for (const f of flags) if (v[f] !== undefined && method !== m) throw new FrugalError('E_USAGE', `--${String(f)} applies to --method ${m}, not ${method}`);
    };
    only(['sparsity', 'scope'], 'magnitude');
    if (v['one-shot'] && method !== 'magnitude') throw new FrugalError('E_USAGE', `--one-shot applies to --method magnitude, not ${method}`);
    only(['pattern'], 'nm');
    if (v['include-embeddings'] && method === 'structured') throw new FrugalError('E_USAGE', '--include-embeddings applies to --method magnitude or nm, not structured');
    only(['ratio', 'head-ratio', 'target', 'importance'], 'structured');
    const { sparsity, ratio, lr, scope, target, importance, epochs, steps, dataset, threads } = v;
    const headRatio = v['head-ratio'];
    const pattern = v.pattern !== undefined ? parsePattern(v.pattern) : undefined;
    const zoo = !existsSync(input) && Object.hasOwn(ZOO, input);
    if (!existsSync(input) && !zoo) throw new FrugalError('E_USAGE', `model '${input}' is neither an existing file nor a zoo model (${zooNames().join(', ')})`);
    if (path.resolve(input) === path.resolve(v.output)) throw new FrugalError('E_USAGE', `refusing to write '${v.output}': it is the input model; choose another output path`);

    const t0 = performance.now();
    ctx.progress(`reading ${input}`);
    const model = zoo ? buildZooModel(input) : await loadModel(input);
    const r = await pruneModel(model, {
      method,
      ...(sparsity !== undefined ? { sparsity } : {}),
      ...(scope ? { scope } : {}),
      ...(pattern ? { pattern } : {}),
      ...(ratio !== undefined ? { ratio } : {}),
      ...(headRatio !== undefined ? { headRatio } : {}),
      ...(target ? { target } : {}),
      ...(importance ? { importance } : {}),
      ...(v['include-embeddings'] ? { embeddings: true } : {}),
      ...(v.exclude.length ? { exclude: v.exclude } : {}),
      ...(dataset ? { dataset } : {}),
      ...(epochs ? { epochs } : {}),
      ...(steps ? { steps } : {}),
      ...(lr !== undefined ? { lr } : {}),
      ...(v['one-shot'] ? { gradual: false } : {}),
      ...(v.distill ? { distill: true } : {}),
      ...(v.limit !== undefined ? { limit: v.limit } : {}),
      ...(v['eval-limit'] !== undefined ? { evalLimit: v['eval-limit'] } : {}),
      ...(threads ? { intraOpThreads: threads } : {}),
      onPhase: (l) => ctx.progress(l),
      onProgress: (p) =>
        ctx.progress(`epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}${p.accuracy !== undefined ? ` test accuracy ${pct(p.accuracy)}` : ''}`),
    });
    const out = r.model;
    let sparseStats: Awaited<ReturnType<typeof toSparseStorage>> | undefined;
    if (v['sparse-storage']) {
      ctx.progress('converting pruned weights to sparse initializers');
      sparseStats = await toSparseStorage(out);
    }
    ctx.progress('measuring latency (1 thread, batch 1)');
    const latency = await latencyRatio(model, out);
    ctx.progress(`writing ${v.output}`);
    const saved = await saveModel(out, v.output, zoo ? {} : { protect: [input] });
    const sizeBefore = zoo ? encodeModelToBytes(model).byteLength : await modelDiskBytes(input, model);
    const sizeAfter = saved.bytes + (saved.externalDataBytes ?? 0);
    const unstructured = method !== 'structured';
    const summary = {
      input,
      output: saved.path,
      method,
      sparsity: r.sparsity,
      parameterCount: r.parameterCount,
      flops: r.flops,
      flopsShape: r.flopsShape,
      sizeBytes: { before: sizeBefore, after: sizeAfter },
      ...(r.accuracy ? { accuracy: r.accuracy } : {}),
      latencyRatio: latency.ratio,
      latencyMs: { before: latency.beforeMs, after: latency.afterMs, batch: latency.batch, threads: 1 },
      ...(sparseStats ? { sparseStorage: sparseStats } : {}),
      ...(r.fineTune ? { fineTune: r.fineTune } : {}),
      note: unstructured
        ? method === 'nm'
          ? 'N:M sparsity is stored densely here; its speed comes from sparse tensor cores on GPUs (Ampere and later), not from this CPU'
          : 'unstructured sparsity gives no speedup with dense CPU kernels; it shrinks compressed or --sparse-storage files'
        : 'structured pruning removed channels/units/heads: the dense model is smaller and does fewer FLOPs',
      stats: r.stats,
      seconds: (performance.now() - t0) / 1000,
    };
    if (ctx.json) {
      ctx.out(JSON.stringify(summary, null, 2));
      return;
    }
    const ratio2 = (a: number | null, b: number | null) => (a && b ? `${(a / b).toFixed(2)}× fewer` : 'unknown');
    ctx.out(`${method}: sparsity ${pct(r.sparsity)} of prunable weights`);
    ctx.out(`  parameters ${r.parameterCount.before} → ${r.parameterCount.after} (${ratio2(r.parameterCount.before, r.parameterCount.after)})`);
    ctx.out(`  FLOPs ${r.flops.before ?? '?'} → ${r.flops.after ?? '?'} (${ratio2(r.flops.before, r.flops.after)}; at ${JSON.stringify(r.flopsShape)})`);
    ctx.out(`  file ${formatBytes(sizeBefore)} → ${formatBytes(sizeAfter)}`);
    if (r.accuracy) {
      ctx.out(`  accuracy ${pct(r.accuracy.before)} before, ${pct(r.accuracy.afterPruning)} after pruning${r.accuracy.afterFineTune !== undefined ? `, ${pct(r.accuracy.afterFineTune)} after fine-tuning` : ''}`);
    }
    ctx.out(`  latency ×${latency.ratio.toFixed(2)} (measured, batch 1, 1 thread: ${latency.beforeMs.toFixed(3)} → ${latency.afterMs.toFixed(3)} ms)`);
    ctx.out(`  note: ${summary.note}`);
    const blocked = (r.stats.blocked as Array<{ node: string; reason: string }> | undefined) ?? [];
    for (const b of blocked.slice(0, 8)) ctx.out(`  kept ${b.node}: ${b.reason}`);
    ctx.out(`wrote ${saved.path}`);
  },
});
