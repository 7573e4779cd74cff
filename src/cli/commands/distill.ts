import { existsSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { EnergyMonitor, joulesToWh, type WindowResult } from '../../profiling/index.js';
import { loadModel, saveModel } from '../../onnx/index.js';
import { buildStudent, checkDistillPair, distillModel, measureModels, trainBaseline } from '../../training/index.js';
import { choiceOption, type Command, intOption, numberOption } from '../command.js';
import { formatNumber, table } from '../../report/format.js';

export const distillCommand: Command = {
  name: 'distill',
  summary: 'train a small student from a teacher (knowledge distillation), compared with the same student trained on labels alone',
  usage: 'frugal distill --teacher <model.onnx> --student <zoo spec | model.onnx | drop-layers | width=0.5> --dataset mnist|spam -o student.onnx [options]',
  positionals: [0, 0],
  options: {
    teacher: { type: 'string', arg: 'model.onnx', description: 'the trained teacher (float32 ONNX model)' },
    student: {
      type: 'string',
      arg: 'spec',
      description: 'zoo spec (cnn:channels=16/24,hidden=64; transformer-tiny:layers=1,hidden=32), an .onnx file, or derived from the teacher: drop-layers, keep-layers=0/2, width=0.5 (joined by +)',
    },
    dataset: { type: 'string', arg: 'mnist|spam', description: 'training and test data' },
    output: { type: 'string', short: 'o', arg: 'out.onnx', description: 'where to write the distilled student' },
    temperature: { type: 'string', arg: 'T', description: 'softmax temperature of the KL term, > 0 (default 4)' },
    alpha: { type: 'string', arg: 'A', description: 'weight of the hard-label cross-entropy in [0, 1]; the KL term gets 1 − A (default 0.5)' },
    epochs: { type: 'string', arg: 'N', description: 'passes over the training data (default 1)' },
    batch: { type: 'string', arg: 'N', description: 'batch size (default 64)' },
    lr: { type: 'string', arg: 'X', description: 'peak learning rate (default 1e-3, cosine schedule)' },
    seed: { type: 'string', arg: 'N', description: 'shuffle and initialization seed (default 0); the baseline uses the same' },
    limit: { type: 'string', arg: 'N', description: 'use only the first N training examples (quick runs)' },
    augment: { type: 'string', arg: 'PX', description: 'MNIST: random shifts up to PX pixels; the teacher then runs online on each augmented batch' },
    'hidden-loss': { type: 'boolean', description: 'add the hidden-state MSE through a learned projection (TinyBERT; zoo CNNs and transformers, cached teacher)' },
    'hidden-weight': { type: 'string', arg: 'X', description: 'weight of the hidden-state loss (default 1)' },
    'cache-teacher': { type: 'boolean', description: 'run the teacher once over the training set and reuse its logits (default unless --augment)' },
    'no-baseline': { type: 'boolean', description: 'skip training the hard-label baseline' },
    checkpoint: { type: 'string', arg: 'FILE', description: 'checkpoint file (the baseline uses FILE.baseline)' },
    'checkpoint-every': { type: 'string', arg: 'N', description: 'steps between checkpoints (default 100)' },
    resume: { type: 'boolean', description: 'continue from --checkpoint if it exists' },
    threads: { type: 'string', arg: 'N', description: 'ONNX Runtime intra-op threads (1 makes runs bit-reproducible)' },
  },
  examples: [
    'frugal distill --teacher models/spam-transformer.onnx --student drop-layers+width=0.5 --dataset spam -o spam-small.onnx',
    'frugal distill --teacher models/mnist-cnn.onnx --student cnn:channels=16/24,hidden=64 --dataset mnist -o cnn-small.onnx --epochs 3 --temperature 4 --alpha 0.5',
    'frugal distill --teacher models/mnist-cnn.onnx --student width=0.45 --dataset mnist -o small.onnx --checkpoint kd.ckpt --resume --json',
    'frugal distill --teacher models/spam-transformer.onnx --student transformer-tiny:layers=1,hidden=32,ffn=64 --dataset spam -o tiny.onnx --hidden-loss',
  ],
  async run(ctx) {
    const v = ctx.values;
    for (const [k, what] of [['teacher', '--teacher <model.onnx>'], ['student', '--student <spec>'], ['dataset', '--dataset mnist|spam'], ['output', '-o <out.onnx>']] as const) {
      if (typeof v[k] !== 'string') throw new FrugalError('E_USAGE', `missing ${what} (see 'frugal distill --help')`);
    }
    const teacherFile = v.teacher as string;
    const output = v.output as string;
    const dataset = choiceOption<'mnist' | 'spam'>(v, 'dataset', ['mnist', 'spam'])!;
    if (!existsSync(teacherFile)) throw new FrugalError('E_USAGE', `--teacher '${teacherFile}': no such file`);
    if (v.resume && typeof v.checkpoint !== 'string') throw new FrugalError('E_USAGE', '--resume needs --checkpoint FILE');
    const temperature = numberOption(v, 'temperature') ?? 4;
    const alpha = numberOption(v, 'alpha') ?? 0.5;
    const lr = numberOption(v, 'lr', { min: 0, exclusiveMin: true });
    const hiddenWeight = numberOption(v, 'hidden-weight', { min: 0, exclusiveMin: true });
    if (hiddenWeight !== undefined && !v['hidden-loss']) throw new FrugalError('E_USAGE', '--hidden-weight needs --hidden-loss');
    const opt = (name: string, min = 1) => (v[name] !== undefined ? intOption(v, name, 0, min) : undefined);
    const seed = opt('seed', 0) ?? 0;
    const shift = opt('augment', 0);
    if (shift !== undefined && dataset !== 'mnist') throw new FrugalError('E_USAGE', '--augment shifts images: it applies to --dataset mnist only');
    if (v['cache-teacher'] && shift) throw new FrugalError('E_USAGE', '--cache-teacher and --augment exclude each other: augmented inputs change every epoch, so the teacher must run online');
    const studentFile = existsSync(v.student as string) ? (v.student as string) : undefined;
    for (const f of [teacherFile, studentFile]) {
      if (f && path.resolve(f) === path.resolve(output)) throw new FrugalError('E_USAGE', `refusing to write '${output}': it is an input model; choose another output path`);
    }

    const teacher = await loadModel(teacherFile);
    const student = await buildStudent(teacher, v.student as string, { seed });
    // Every check that needs no training runs before any: bad input costs nothing and writes nothing.
    checkDistillPair(teacher, student.model, temperature, alpha);
    const given = <T>(key: string, value: T | undefined): Record<string, T> => (value === undefined ? {} : { [key]: value });
    const common = {
      dataset,
      ...given('epochs', opt('epochs')),
      batchSize: opt('batch') ?? 64,
      schedule: 'cosine' as const,
      ...given('lr', lr),
      seed,
      ...given('limit', opt('limit')),
      ...given('intraOpThreads', opt('threads')),
      ...(shift ? { augment: { shift } } : {}),
      resume: v.resume === true,
    };
    const ckpt = (suffix: string) => (typeof v.checkpoint === 'string' ? { checkpoint: v.checkpoint + suffix, checkpointEvery: opt('checkpoint-every') ?? 100 } : {});
    const progress = (label: string) => (p: { epoch: number; epochs: number; step: number; totalSteps: number; loss: number; accuracy?: number }) =>
      ctx.progress(`${label}: epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}${p.accuracy !== undefined ? ` test accuracy ${(100 * p.accuracy).toFixed(2)}%` : ''}`);

    // The distillation's energy: the teacher's inference (cached or online) and the student's training.
    const monitor = new EnergyMonitor();
    const window = monitor.begin('distill');
    let energy: WindowResult;
    let r: Awaited<ReturnType<typeof distillModel>>;
    try {
      r = await distillModel({
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
      });
    } finally {
      energy = await window.end();
      await monitor.close();
    }
    const baseline = v['no-baseline'] ? undefined : await trainBaseline({ ...common, ...ckpt('.baseline'), student: student.model, evaluate: false, onProgress: progress('baseline') });
    ctx.progress('measuring teacher and student (accuracy, FLOPs, latency)');
    const models = [teacher, r.model, ...(baseline ? [baseline.model] : [])];
    const [tf, sf, bf] = await measureModels(models, dataset, { ...given('intraOpThreads', opt('threads')) });
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
};
