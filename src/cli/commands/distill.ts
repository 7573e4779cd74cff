import { existsSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { joulesToWh } from '../../profiling/index.js';
import { loadModel, saveModel } from '../../onnx/index.js';
import { buildStudent, checkDistillPair, distillModel, measureModels, trainBaseline } from '../../training/index.js';
import { defineCommand } from '../command.js';
import { formatNumber, table } from '../../report/format.js';

export const distillCommand = defineCommand({
  name: 'distill',
  usage: 'frugal distill --teacher <model.onnx> --student <zoo spec | model.onnx | drop-layers | width=0.5> --dataset mnist|spam -o student.onnx [options]',
  positionals: [0, 0],
  options: {
    teacher: { type: 'string', arg: 'model.onnx', required: true, description: 'the trained teacher (float32 ONNX model)' },
    student: {
      type: 'string',
      arg: 'spec',
      required: true,
      description: 'zoo spec (cnn:channels=16/24,hidden=64; transformer-tiny:layers=1,hidden=32), an .onnx file, or derived from the teacher: drop-layers, keep-layers=0/2, width=0.5 (joined by +)',
    },
    dataset: { type: 'choice', choices: ['mnist', 'spam'], required: true, description: 'training and test data' },
    output: { type: 'string', short: 'o', arg: 'out.onnx', required: true, description: 'where to write the distilled student' },
    temperature: { type: 'number', arg: 'T', default: 4, description: 'softmax temperature of the KL term, > 0' },
    alpha: { type: 'number', arg: 'A', default: 0.5, description: 'weight of the hard-label cross-entropy in [0, 1]; the KL term gets 1 − A' },
    epochs: { type: 'int', min: 1, description: 'passes over the training data (default 1)' },
    batch: { type: 'int', min: 1, default: 64, description: 'batch size' },
    lr: { type: 'number', min: 0, exclusiveMin: true, description: 'peak learning rate (default 1e-3, cosine schedule)' },
    seed: { type: 'int', min: 0, default: 0, description: 'shuffle and initialization seed; the baseline uses the same' },
    limit: { type: 'int', min: 1, description: 'use only the first N training examples (quick runs)' },
    augment: { type: 'int', min: 0, arg: 'PX', conflicts: ['cache-teacher'], description: 'MNIST: random shifts up to PX pixels; the teacher then runs online on each augmented batch' },
    'hidden-loss': { type: 'boolean', description: 'add the hidden-state MSE through a learned projection (TinyBERT; zoo CNNs and transformers, cached teacher)' },
    'hidden-weight': { type: 'number', min: 0, exclusiveMin: true, requires: 'hidden-loss', description: 'weight of the hidden-state loss (default 1)' },
    'cache-teacher': { type: 'boolean', description: 'run the teacher once over the training set and reuse its logits (default unless --augment)' },
    'no-baseline': { type: 'boolean', description: 'skip training the hard-label baseline' },
    checkpoint: { type: 'string', arg: 'FILE', description: 'checkpoint file (the baseline uses FILE.baseline)' },
    'checkpoint-every': { type: 'int', min: 1, default: 100, description: 'steps between checkpoints' },
    resume: { type: 'boolean', requires: 'checkpoint', description: 'continue from --checkpoint if it exists' },
    threads: { type: 'int', min: 1, description: 'ONNX Runtime intra-op threads (1 makes runs bit-reproducible)' },
  },
  examples: [
    'frugal distill --teacher models/spam-transformer.onnx --student drop-layers+width=0.5 --dataset spam -o spam-small.onnx',
    'frugal distill --teacher models/mnist-cnn.onnx --student cnn:channels=16/24,hidden=64 --dataset mnist -o cnn-small.onnx --epochs 3 --temperature 4 --alpha 0.5',
    'frugal distill --teacher models/mnist-cnn.onnx --student width=0.45 --dataset mnist -o small.onnx --checkpoint kd.ckpt --resume --json',
    'frugal distill --teacher models/spam-transformer.onnx --student transformer-tiny:layers=1,hidden=32,ffn=64 --dataset spam -o tiny.onnx --hidden-loss',
  ],
  async run(ctx) {
    const v = ctx.values;
    const { teacher: teacherFile, output, dataset, temperature, alpha, lr, seed, augment: shift } = v;
    const hiddenWeight = v['hidden-weight'];
    if (!existsSync(teacherFile)) throw new FrugalError('E_USAGE', `--teacher '${teacherFile}': no such file`);
    if (shift !== undefined && dataset !== 'mnist') throw new FrugalError('E_USAGE', '--augment shifts images: it applies to --dataset mnist only');
    const studentFile = existsSync(v.student) ? v.student : undefined;
    for (const f of [teacherFile, studentFile]) {
      if (f && path.resolve(f) === path.resolve(output)) throw new FrugalError('E_USAGE', `refusing to write '${output}': it is an input model; choose another output path`);
    }

    const teacher = await loadModel(teacherFile);
    const student = await buildStudent(teacher, v.student, { seed });
    // Every check that needs no training runs before any: bad input costs nothing and writes nothing.
    checkDistillPair(teacher, student.model, temperature, alpha);
    const given = <T>(key: string, value: T | undefined): Record<string, T> => (value === undefined ? {} : { [key]: value });
    const common = {
      dataset,
      ...given('epochs', v.epochs),
      batchSize: v.batch,
      schedule: 'cosine' as const,
      ...given('lr', lr),
      seed,
      ...given('limit', v.limit),
      ...given('intraOpThreads', v.threads),
      ...(shift ? { augment: { shift } } : {}),
      resume: v.resume,
    };
    const ckpt = (suffix: string) => (v.checkpoint !== undefined ? { checkpoint: v.checkpoint + suffix, checkpointEvery: v['checkpoint-every'] } : {});
    const progress = (label: string) => (p: { epoch: number; epochs: number; step: number; totalSteps: number; loss: number; accuracy?: number }) =>
      ctx.progress(`${label}: epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}${p.accuracy !== undefined ? ` test accuracy ${(100 * p.accuracy).toFixed(2)}%` : ''}`);

    // The distillation's energy (measured by the library): the teacher's inference and the student's training.
    const r = await distillModel({
      ...common,
      ...ckpt(''),
      teacher,
      student: student.model,
      temperature,
      alpha,
      ...(v['cache-teacher'] ? { cacheTeacher: true } : {}),
      ...(v['hidden-loss'] ? { hiddenLoss: { weight: hiddenWeight ?? 1 } } : {}),
      onTeacherProgress: (done, total) => ctx.progress(`teacher logits: ${done}/${total} training examples`),
      onProgress: progress('distill'),
      measureEnergy: true,
    });
    const energy = r.energy!.run;
    const baseline = v['no-baseline'] ? undefined : await trainBaseline({ ...common, ...ckpt('.baseline'), student: student.model, evaluate: false, onProgress: progress('baseline') });
    ctx.progress('measuring teacher and student (accuracy, FLOPs, latency)');
    const models = [teacher, r.model, ...(baseline ? [baseline.model] : [])];
    const [tf, sf, bf] = await measureModels(models, dataset, { ...given('intraOpThreads', v.threads) });
    const saved = await saveModel(r.model, output, { protect: [teacherFile, ...(studentFile ? [studentFile] : [])] });

    const ratio = tf!.flops && sf!.flops !== null ? sf!.flops / tf!.flops : null;
    const result = {
      output: saved.path,
      dataset,
      studentSpec: v.student,
      studentSource: student.source,
      temperature,
      alpha,
      teacherMode: r.teacherMode,
      hiddenLoss: v['hidden-loss'] ? { weight: hiddenWeight ?? 1 } : null,
      teacher: tf,
      student: sf,
      accuracyRetained: sf!.accuracy / tf!.accuracy,
      flopsRatio: ratio,
      ...(bf ? { baselineAccuracy: bf.accuracy } : {}),
      epochs: r.epochs.map((e) => ({ epoch: e.epoch, loss: e.loss, accuracy: e.accuracy ?? null })),
      steps: r.steps,
      resumedFrom: r.resumedFrom ?? null,
      teacherSeconds: r.teacherSeconds,
      wallSeconds: r.wallSeconds,
      trainEnergy: {
        joules: energy.energy.joules,
        wh: energy.energy.joules === null ? null : joulesToWh(energy.energy.joules),
        source: energy.energy.sources.join(' + ') || 'none',
        estimated: energy.energy.estimated,
        includes: r.teacherMode === 'cached' ? 'teacher inference (logit cache) + student training' : 'teacher inference (online, per batch) + student training',
        ...(energy.energy.note ? { note: energy.energy.note } : {}),
      },
    };
    if (ctx.json) {
      ctx.out(JSON.stringify(result));
      return;
    }
    if (r.resumedFrom) ctx.out(`resumed from epoch ${r.resumedFrom.epoch + 1}, step ${r.resumedFrom.step}`);
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    const row = (name: string, f: typeof tf) => [name, pct(f!.accuracy), formatNumber(f!.parameterCount), f!.flops === null ? '?' : formatNumber(f!.flops), f!.latencyP50Ms.toFixed(3)];
    ctx.out(table(['model', 'test accuracy', 'parameters', 'FLOPs/example', 'p50 ms (batch 1)'], [row('teacher', tf), row(`student (distilled, ${student.source})`, sf), ...(bf ? [row('student (hard labels only)', bf)] : [])]));
    ctx.out(`accuracy retained ${pct(result.accuracyRetained)} at ${ratio === null ? '?' : `${(100 * ratio).toFixed(1)}%`} of the teacher's FLOPs; T=${temperature}, alpha=${alpha}, teacher ${r.teacherMode}`);
    const e = energy.energy;
    ctx.out(e.joules === null ? `energy: not measured (${e.note ?? 'no meter'})` : `energy (teacher inference + student training): ${formatNumber(e.joules)} J (${e.estimated ? 'ESTIMATED' : 'measured'}: ${e.sources.join(' + ')})`);
    ctx.out(`wrote ${saved.path}`);
  },
});
