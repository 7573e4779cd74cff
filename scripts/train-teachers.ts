/**
 * Reproduces the embedded teacher models that later issues distill, prune and quantize:
 *   models/mnist-cnn.onnx         MNIST CNN (goal: ≥ 98.5% test accuracy on the fixed 2,000-image split)
 *   models/spam-transformer.onnx  SpamAssassin transformer encoder, 512 tokens (goal: ≥ 97% test accuracy)
 *
 *   npm run teachers              # both
 *   npm run teachers -- mnist     # one
 *
 * Everything is seeded; with `--threads=1` a rerun gives the same weights bit for bit (more threads
 * change float summation order). Commands, accuracies and times are recorded in BENCHMARKS.md.
 *
 * Each teacher trains on its training split minus the last `SEARCH_DEFAULTS[dataset].validation`
 * examples: that tail is the validation block `frugal optimize` and the demo choose on
 * (search/validation.ts), so it must be data the teacher never saw. The saved model records the prefix it
 * was trained on (`frugal.trainedOn` metadata).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { saveModel } from '../src/onnx/index.js';
import { trainModel, type TrainOptions } from '../src/training/index.js';
import { DATASETS } from '../src/data/index.js';
import { SEARCH_DEFAULTS } from '../src/search/optimize.js';
import { buildCnn } from '../src/zoo/cnn.js';
import { buildTransformerEncoder } from '../src/zoo/transformer.js';
import type { Model } from '../src/ir/model.js';

interface Teacher {
  file: string;
  goal: number;
  build: () => Model;
  train: Omit<TrainOptions, 'model'>;
}

/** Training examples a teacher may see: all but the search's validation tail. */
const heldOutTail = (dataset: 'mnist' | 'spam'): number => DATASETS[dataset].sizes.train - SEARCH_DEFAULTS[dataset].validation;

/** The recipes: architecture and training settings, as data. */
export const TEACHERS: Record<string, Teacher> = {
  mnist: {
    file: 'models/mnist-cnn.onnx',
    goal: 0.985,
    build: () => buildCnn({ channels: [32, 64], hidden: 128, dropout: 0.25, seed: 1 }),
    train: { dataset: 'mnist', epochs: 20, batchSize: 64, lr: 2e-3, schedule: 'cosine', warmupSteps: 100, seed: 1, augment: { shift: 2 }, limit: heldOutTail('mnist') },
  },
  spam: {
    file: 'models/spam-transformer.onnx',
    goal: 0.97,
    build: () => buildTransformerEncoder({ vocabSize: 8192, maxLength: 512, hidden: 64, layers: 2, heads: 4, ffn: 128, classes: 2, seed: 1 }),
    train: { dataset: 'spam', epochs: 4, batchSize: 16, lr: 1e-3, schedule: 'cosine', warmupSteps: 50, seed: 1, maxLength: 512, limit: heldOutTail('spam') },
  },
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const threadsArg = args.find((a) => a.startsWith('--threads='));
  const threads = threadsArg ? Number(threadsArg.slice(10)) : undefined;
  const names = args.filter((a) => !a.startsWith('--'));
  for (const name of names.length ? names : Object.keys(TEACHERS)) {
    const t = TEACHERS[name];
    if (!t) throw new Error(`unknown teacher '${name}' (known: ${Object.keys(TEACHERS).join(', ')})`);
    const t0 = performance.now();
    const result = await trainModel({
      ...t.train,
      model: t.build(),
      intraOpThreads: threads,
      onProgress: (p) => {
        if (p.accuracy !== undefined || p.step % 50 === 0) process.stderr.write(`[${name}] epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} ${p.samplesPerSec.toFixed(0)} samples/s${p.accuracy !== undefined ? ` accuracy ${(p.accuracy * 100).toFixed(2)}%` : ''}\n`);
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    mkdirSync(path.dirname(t.file), { recursive: true });
    const saved = await saveModel(result.model, t.file, { externalData: false });
    const acc = result.finalAccuracy ?? NaN;
    process.stdout.write(
      `${JSON.stringify({ teacher: name, file: t.file, bytes: saved.bytes, testAccuracy: acc, goal: t.goal, met: acc >= t.goal, seconds, epochs: result.epochs })}\n`,
    );
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
