import { existsSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { EnergyMonitor, joulesToWh, type MeasurementWindow, type WindowResult } from '../../profiling/index.js';
import type { Model } from '../../ir/model.js';
import { loadModel, saveModel } from '../../onnx/index.js';
import { OPTIMIZER_KINDS, type OptimizerKind, SCHEDULE_KINDS, type ScheduleKind, trainModel } from '../../training/index.js';
import { buildZooModel, ZOO, zooNames } from '../../zoo/index.js';
import { choiceOption, type Command, intOption, numberOption } from '../command.js';
import { formatNumber, table } from '../../report/format.js';

async function loadModelArg(spec: string): Promise<{ model: Model; file?: string }> {
  if (Object.hasOwn(ZOO, spec)) return { model: buildZooModel(spec) };
  if (!existsSync(spec)) throw new FrugalError('E_USAGE', `--model '${spec}' is neither a zoo model (${zooNames().join(', ')}) nor an existing file`);
  return { model: await loadModel(spec), file: spec };
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a zoo model or an ONNX model on a built-in dataset (mnist, spam) with ONNX Runtime',
  usage: 'frugal train --model <zoo name | model.onnx> --dataset mnist|spam -o out.onnx [options]',
  positionals: [0, 0],
  options: {
    model: { type: 'string', arg: 'name|file', description: `zoo model (${zooNames().join(', ')}) or an .onnx file` },
    dataset: { type: 'string', arg: 'mnist|spam', description: 'training data' },
    output: { type: 'string', short: 'o', arg: 'out.onnx', description: 'where to write the trained model' },
    epochs: { type: 'string', arg: 'N', description: 'passes over the training data (default 1)' },
    steps: { type: 'string', arg: 'N', description: 'optimizer steps in total (overrides --epochs)' },
    batch: { type: 'string', arg: 'N', description: 'batch size (default 64)' },
    lr: { type: 'string', arg: 'X', description: 'peak learning rate (default 1e-3 adamw, 0.05 sgd)' },
    optimizer: { type: 'string', arg: 'adamw|sgd', description: 'optimizer (default adamw)' },
    schedule: { type: 'string', arg: 'constant|cosine|linear', description: 'learning-rate schedule after warmup (default constant)' },
    warmup: { type: 'string', arg: 'N', description: 'linear warmup steps (default 0)' },
    seed: { type: 'string', arg: 'N', description: 'shuffle seed (default 0)' },
    limit: { type: 'string', arg: 'N', description: 'use only the first N training examples (quick runs)' },
    'max-length': { type: 'string', arg: 'N', description: 'text: sequence length (default: the model\'s position table)' },
    checkpoint: { type: 'string', arg: 'FILE', description: 'write a checkpoint here every --checkpoint-every steps and at each epoch end' },
    'checkpoint-every': { type: 'string', arg: 'N', description: 'steps between checkpoints (default 100)' },
    resume: { type: 'boolean', description: 'continue from --checkpoint if it exists' },
    threads: { type: 'string', arg: 'N', description: 'ONNX Runtime intra-op threads (1 makes runs bit-reproducible)' },
    precision: { type: 'string', arg: 'fp32|fp16', description: 'fp16: mixed precision with fp32 master weights and dynamic loss scaling (default fp32)' },
  },
  examples: [
    'frugal train --model mlp --dataset mnist -o mlp.onnx --epochs 3',
    'frugal train --model cnn --dataset mnist -o cnn.onnx --epochs 5 --schedule cosine --warmup 100 --checkpoint cnn.ckpt',
    'frugal train --model cnn --dataset mnist -o cnn.onnx --epochs 5 --checkpoint cnn.ckpt --resume',
    'frugal train --model transformer-tiny --dataset spam -o spam.onnx --precision fp16 --json',
  ],
  async run(ctx) {
    const v = ctx.values;
    if (typeof v.model !== 'string') throw new FrugalError('E_USAGE', "missing --model <zoo name | model.onnx> (see 'frugal train --help')");
    if (typeof v.dataset !== 'string') throw new FrugalError('E_USAGE', "missing --dataset mnist|spam (see 'frugal train --help')");
    if (typeof v.output !== 'string') throw new FrugalError('E_USAGE', "missing -o <out.onnx> (see 'frugal train --help')");
    if (v.resume && typeof v.checkpoint !== 'string') throw new FrugalError('E_USAGE', '--resume needs --checkpoint FILE');
    const optimizer = choiceOption<OptimizerKind>(v, 'optimizer', OPTIMIZER_KINDS);
    const schedule = choiceOption<ScheduleKind>(v, 'schedule', SCHEDULE_KINDS);
    const precision = choiceOption<'fp32' | 'fp16'>(v, 'precision', ['fp32', 'fp16']);
    const lr = numberOption(v, 'lr', { min: 0, exclusiveMin: true });
    const opt = (name: string, min = 1) => (v[name] !== undefined ? intOption(v, name, 0, min) : undefined);
    // Present flags only: the trainer's own defaults apply to the rest.
    const given = <T>(key: string, value: T | undefined): Record<string, T> => (value === undefined ? {} : { [key]: value });
    const { model, file } = await loadModelArg(v.model);
    const output = v.output;
    if (file && path.resolve(file) === path.resolve(output)) throw new FrugalError('E_USAGE', `refusing to write '${output}': it is the input model; choose another output path`);
    // Energy of the whole run (setup included) and of each epoch (windows nested in it, from the first
    // step, evaluation included), labelled with its source (a counter where one is readable, else an
    // estimate).
    const monitor = new EnergyMonitor();
    const window = monitor.begin('train');
    let epochWindow: MeasurementWindow | undefined;
    let epochOpen = false;
    // Window ends are taken synchronously in the progress callback (timestamps and counter marks); the
    // figures are awaited after the run.
    const epochEnergy: Array<{ epoch: number; result: Promise<WindowResult> }> = [];
    let r: Awaited<ReturnType<typeof trainModel>>;
    let energy: WindowResult;
    try {
      r = await trainModel({
      model,
      dataset: v.dataset,
      ...given('epochs', opt('epochs')),
      ...given('steps', opt('steps')),
      batchSize: opt('batch') ?? 64,
      ...(optimizer ? { optimizer } : {}),
      ...(schedule ? { schedule } : {}),
      ...(lr !== undefined ? { lr } : {}),
      warmupSteps: opt('warmup', 0) ?? 0,
      seed: opt('seed', 0) ?? 0,
      ...given('limit', opt('limit')),
      ...given('maxLength', opt('max-length')),
      ...(typeof v.checkpoint === 'string' ? { checkpoint: v.checkpoint, checkpointEvery: opt('checkpoint-every') ?? 100 } : {}),
      resume: v.resume === true,
      ...given('intraOpThreads', opt('threads')),
      ...given('precision', precision),
      onStart: () => {
        epochWindow = monitor.begin('epoch');
        epochOpen = true;
      },
      onProgress: (p) => {
        ctx.progress(
          `epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} lr ${p.lr.toPrecision(3)} ${Math.round(p.samplesPerSec)} samples/s` +
            (p.accuracy !== undefined ? ` test accuracy ${(100 * p.accuracy).toFixed(2)}%` : ''),
        );
        if (p.epochEnd) {
          epochEnergy.push({ epoch: p.epoch, result: epochWindow!.end() });
          epochOpen = p.step < p.totalSteps;
          if (epochOpen) epochWindow = monitor.begin('epoch');
        }
      },
      });
    } finally {
      // A run that failed mid-epoch leaves its epoch window open: close it before the outer one.
      if (epochOpen) await epochWindow!.end();
      energy = await window.end();
      await monitor.close();
    }
    const saved = await saveModel(r.model, output, file ? { protect: [file] } : {});
    // Epochs run in this call (a resumed run's earlier epochs were measured by the earlier call).
    const perEpoch = new Map<number, WindowResult>();
    for (const e of epochEnergy) perEpoch.set(e.epoch, await e.result);
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
};

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
