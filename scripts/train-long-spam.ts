/**
 * Long-sequence spam models (issue 15): the spam teacher's architecture (hidden 64, 2 layers, 4 heads)
 * over whole emails of up to --length tokens (default 2048, the teacher reads 512), trained from the
 * start with efficient attention, and its softmax counterpart's training cost measured beside it.
 *
 *   npm run build && node dist/scripts/train-long-spam.js [--length=2048] [--epochs=2] [--forms=linear,window]
 *       [--window=64] [--batch=16] [--steps=N] [--softmax-steps=10] [--softmax-epochs=0] [--out=DIR]
 *
 * Per form: test accuracy on the fixed held-out split, training samples/s, and the process's peak
 * resident memory during that training (the high-water mark is reset before each run via
 * /proc/self/clear_refs, so each figure is that run's own). Softmax trains for --softmax-steps steps
 * only (its cost), or for --softmax-epochs full epochs where time allows (its accuracy).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { saveModel } from '../src/onnx/index.js';
import type { AttentionForm } from '../src/passes/attention/forms.js';
import { trainModel } from '../src/training/index.js';
import { buildTransformerEncoder } from '../src/zoo/transformer.js';

function arg(name: string, fallback: string): string {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
}

function peakSinceReset(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

function resetPeak(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Without clear_refs the figures are cumulative; the JSON says so.
  }
}

async function trainOne(form: AttentionForm, cfg: { length: number; window: number; batch: number; epochs?: number; steps?: number; out?: string }): Promise<Record<string, unknown>> {
  const model = buildTransformerEncoder({ vocabSize: 8192, maxLength: cfg.length, hidden: 64, layers: 2, heads: 4, ffn: 128, classes: 2, seed: 1, attention: form, attentionWindow: cfg.window });
  resetPeak();
  const t0 = performance.now();
  const r = await trainModel({
    model,
    dataset: 'spam',
    batchSize: cfg.batch,
    lr: 1e-3,
    schedule: 'cosine',
    warmupSteps: 50,
    seed: 1,
    maxLength: cfg.length,
    ...(cfg.steps !== undefined ? { steps: cfg.steps, evaluate: false } : { epochs: cfg.epochs ?? 2 }),
    onProgress: (p) => {
      if (p.step % 25 === 0 || p.accuracy !== undefined) process.stderr.write(`[${form}] step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} ${p.samplesPerSec.toFixed(1)} samples/s${p.accuracy !== undefined ? ` accuracy ${(100 * p.accuracy).toFixed(2)}%` : ''}\n`);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const peakBytes = peakSinceReset();
  if (cfg.out && cfg.steps === undefined) await saveModel(r.model, path.join(cfg.out, `spam-${cfg.length}-${form}.onnx`), { externalData: false });
  const row = { form, length: cfg.length, batch: cfg.batch, window: form === 'window' ? cfg.window : undefined, steps: r.steps, testAccuracy: r.finalAccuracy ?? null, samplesPerSec: r.samplesPerSec, seconds, peakMiB: peakBytes / 2 ** 20 };
  // Each row as soon as it exists: softmax at long lengths may be killed for memory before the end.
  process.stderr.write(`${JSON.stringify(row)}\n`);
  return row;
}

async function main(): Promise<void> {
  const length = Number(arg('length', '2048'));
  const epochs = Number(arg('epochs', '2'));
  const window = Number(arg('window', '64'));
  const forms = arg('forms', 'linear,window').split(',') as AttentionForm[];
  const softmaxSteps = Number(arg('softmax-steps', '10'));
  const batch = Number(arg('batch', '16'));
  // --steps=N: every form trains N steps only (cost, no accuracy).
  const steps = arg('steps', '') ? Number(arg('steps', '')) : undefined;
  const softmaxEpochs = Number(arg('softmax-epochs', '0'));
  const out = arg('out', '');
  const rows: Array<Record<string, unknown>> = [];
  for (const form of forms) rows.push(await trainOne(form, { length, window, batch, ...(steps !== undefined ? { steps } : { epochs }), ...(out ? { out } : {}) }));
  rows.push(await trainOne('softmax', softmaxEpochs > 0 ? { length, window, batch, epochs: softmaxEpochs } : { length, window, batch, steps: softmaxSteps }));
  const soft = rows[rows.length - 1]!;
  for (const r of rows.slice(0, -1)) {
    r.trainSpeedupVsSoftmax = (r.samplesPerSec as number) / (soft.samplesPerSec as number);
    r.peakMemoryRatioVsSoftmax = (soft.peakMiB as number) / (r.peakMiB as number);
  }
  process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
