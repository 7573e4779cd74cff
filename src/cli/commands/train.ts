import { existsSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { joulesToWh, type WindowResult } from '../../profiling/index.js';
import type { Model } from '../../ir/model.js';
import { loadModel, saveModel } from '../../onnx/index.js';
import { OPTIMIZER_KINDS, SCHEDULE_KINDS, trainModel } from '../../training/index.js';
import { buildZooModel, ZOO, zooNames } from '../../zoo/index.js';
import { DATASETS } from '../../data/index.js';
import { defineCommand } from '../command.js';
import { formatNumber, table } from '../../report/format.js';

async function loadModelArg(spec: string): Promise<{ model: Model; file?: string }> {
  if (Object.hasOwn(ZOO, spec)) return { model: buildZooModel(spec) };
  if (!existsSync(spec)) throw new FrugalError('E_USAGE', `--model '${spec}' is neither a zoo model (${zooNames().join(', ')}) nor an existing file`);
  return { model: await loadModel(spec), file: spec };
}

export const trainCommand = defineCommand({
  name: 'train',
  usage: 'frugal train --model <zoo name | model.onnx> --dataset mnist|spam -o out.onnx [options]',
  positionals: [0, 0],
  options: {
    model: { type: 'string', arg: 'name|file', required: true, description: `zoo model (${zooNames().join(', ')}) or an .onnx file` },
    dataset: { type: 'choice', choices: Object.keys(DATASETS), required: true, description: 'training data' },
    output: { type: 'string', short: 'o', arg: 'out.onnx', required: true, description: 'where to write the trained model' },
    epochs: { type: 'int', min: 1, description: 'passes over the training data (default 1)' },
    steps: { type: 'int', min: 1, description: 'optimizer steps in total (overrides --epochs)' },
    batch: { type: 'int', min: 1, default: 64, description: 'batch size' },
    lr: { type: 'number', min: 0, exclusiveMin: true, description: 'peak learning rate (default 1e-3 adamw, 0.05 sgd)' },
    optimizer: { type: 'choice', choices: OPTIMIZER_KINDS, description: 'optimizer (default adamw)' },
    schedule: { type: 'choice', choices: SCHEDULE_KINDS, description: 'learning-rate schedule after warmup (default constant)' },
    warmup: { type: 'int', min: 0, default: 0, description: 'linear warmup steps' },
    seed: { type: 'int', min: 0, default: 0, description: 'shuffle seed' },
    limit: { type: 'int', min: 1, description: 'use only the first N training examples (quick runs)' },
    'max-length': { type: 'int', min: 1, description: 'text: sequence length (default: the model\'s position table)' },
    checkpoint: { type: 'string', arg: 'FILE', description: 'write a checkpoint here every --checkpoint-every steps and at each epoch end' },
    'checkpoint-every': { type: 'int', min: 1, default: 100, description: 'steps between checkpoints' },
    resume: { type: 'boolean', requires: 'checkpoint', description: 'continue from --checkpoint if it exists' },
    threads: { type: 'int', min: 1, description: 'ONNX Runtime intra-op threads (1 makes runs bit-reproducible)' },
    precision: { type: 'choice', choices: ['fp32', 'fp16'], description: 'fp16: mixed precision with fp32 master weights and dynamic loss scaling (default fp32)' },
  },
  examples: [
    'frugal train --model mlp --dataset mnist -o mlp.onnx --epochs 3',
    'frugal train --model cnn --dataset mnist -o cnn.onnx --epochs 5 --schedule cosine --warmup 100 --checkpoint cnn.ckpt',
    'frugal train --model cnn --dataset mnist -o cnn.onnx --epochs 5 --checkpoint cnn.ckpt --resume',
    'frugal train --model transformer-tiny --dataset spam -o spam.onnx --precision fp16 --json',
  ],
  async run(ctx) {
    const v = ctx.values;
    const { optimizer, schedule, precision, lr } = v;
    // Present flags only: the trainer's own defaults apply to the rest.
    const given = <T>(key: string, value: T | undefined): Record<string, T> => (value === undefined ? {} : { [key]: value });
    const { model, file } = await loadModelArg(v.model);
    const output = v.output;
    if (file && path.resolve(file) === path.resolve(output)) throw new FrugalError('E_USAGE', `refusing to write '${output}': it is the input model; choose another output path`);
    const r = await trainModel({
      model,
      dataset: v.dataset,
      ...given('epochs', v.epochs),
      ...given('steps', v.steps),
      batchSize: v.batch,
      ...(optimizer ? { optimizer } : {}),
      ...(schedule ? { schedule } : {}),
      ...(lr !== undefined ? { lr } : {}),
      warmupSteps: v.warmup,
      seed: v.seed,
      ...given('limit', v.limit),
      ...given('maxLength', v['max-length']),
      ...(v.checkpoint !== undefined ? { checkpoint: v.checkpoint, checkpointEvery: v['checkpoint-every'] } : {}),
      resume: v.resume,
      ...given('intraOpThreads', v.threads),
      ...given('precision', precision),
      measureEnergy: true,
      onProgress: (p) => {
        ctx.progress(
          `epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} lr ${p.lr.toPrecision(3)} ${Math.round(p.samplesPerSec)} samples/s` +
            (p.accuracy !== undefined ? ` test accuracy ${(100 * p.accuracy).toFixed(2)}%` : ''),
        );
      },
    });
    const energy = r.energy!.run;
    const saved = await saveModel(r.model, output, file ? { protect: [file] } : {});
    const perEpoch = new Map(r.energy!.epochs.map((e) => [e.epoch, e.energy]));
    if (ctx.json) {
      ctx.out(
        JSON.stringify({
          output: saved.path,
          dataset: v.dataset,
          steps: r.steps,
          samples: r.samples,
          finalLoss: r.finalLoss,
          accuracy: r.finalAccuracy ?? null,
          epochs: r.epochs.map((e) => ({ epoch: e.epoch, loss: e.loss, accuracy: e.accuracy ?? null, energy: perEpoch.has(e.epoch) ? energyJson(perEpoch.get(e.epoch)!) : null })),
          samplesPerSec: r.samplesPerSec,
          wallSeconds: r.wallSeconds,
          resumedFrom: r.resumedFrom ?? null,
          precision: precision ?? 'fp32',
          ...(r.lossScale ? { lossScale: r.lossScale } : {}),
          energy: energyJson(energy),
        }),
      );
      return;
    }
    if (r.resumedFrom) ctx.out(`resumed from epoch ${r.resumedFrom.epoch + 1}, step ${r.resumedFrom.step}`);
    const joules = (e: number): string => {
      const w = perEpoch.get(e);
      if (!w || w.energy.joules === null) return '-';
      return `${formatNumber(w.energy.joules)}${w.energy.estimated ? ' (est.)' : ''}`;
    };
    ctx.out(table(['epoch', 'train loss', 'test accuracy', 'energy J', 'seconds'], r.epochs.map((e) => [String(e.epoch + 1), formatNumber(e.loss), e.accuracy !== undefined ? `${(100 * e.accuracy).toFixed(2)}%` : '-', joules(e.epoch), perEpoch.has(e.epoch) ? formatNumber(perEpoch.get(e.epoch)!.seconds) : '-'])));
    if (r.lossScale) ctx.out(`mixed precision: final loss scale ${r.lossScale.scale}, ${r.lossScale.skippedSteps} step(s) skipped for float16 overflow; master weights saved in float32`);
    ctx.out(`${r.steps} steps, ${r.samples} samples, ${Math.round(r.samplesPerSec)} samples/s, ${r.wallSeconds.toFixed(1)} s; wrote ${saved.path}`);
    ctx.out(energyLine(energy));
  },
});

/** The run's energy as JSON: joules, Wh, carbon, and the source of each figure. */
function energyJson(w: WindowResult) {
  return {
    joules: w.energy.joules,
    wh: w.energy.joules === null ? null : joulesToWh(w.energy.joules),
    sources: w.energy.sources,
    estimated: w.energy.estimated,
    carbonGrams: w.carbon?.grams ?? null,
    carbonSource: w.carbon?.source ?? null,
    ...(w.energy.note ? { note: w.energy.note } : {}),
  };
}

function energyLine(w: WindowResult): string {
  const e = w.energy;
  if (e.joules === null) return `energy: not measured (${e.note ?? 'no meter'})`;
  const kind = e.estimated ? 'ESTIMATED' : 'measured';
  return `energy: ${formatNumber(e.joules)} J = ${formatNumber(joulesToWh(e.joules))} Wh (${kind}: ${e.sources.join(' + ')}); carbon ${formatNumber(w.carbon?.grams ?? 0)} gCO2e at ${w.carbon?.gCo2ePerKwh} g/kWh`;
}
