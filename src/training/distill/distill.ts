/**
 * Knowledge distillation as a recipe over the trainer: the student trains on
 *   (1 − α) · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + α · CE(student, hard labels)
 * (Hinton et al.; the loss is ONNX ops in the training graph, losses.ts), with the teacher's logits
 * either cached once over the train split (default without augmentation; teacher.ts) or computed online
 * for each batch by the trainer's teacher session (needed when augmentation changes the inputs every
 * epoch). {@link trainBaseline} trains the same student on hard labels alone, with the same seed, data
 * order and schedule, which is the comparison that says whether the teacher helped.
 */
import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import { shapeOf } from '../../ir/types.js';
import { checkLossSpec } from '../losses.js';
import { trainModel, type TrainOptions, type TrainResult } from '../trainer.js';
import { EnergyMonitor, type WindowResult } from '../../profiling/window.js';
import { HIDDEN_OUTPUT, HIDDEN_PROJECTION, HIDDEN_TARGET_INPUT, hiddenState, stripHiddenHead, withHiddenHead, withOutput } from './hidden.js';
import { cachedTeacherFeeds, cacheTeacherLogits, type TeacherCache } from './teacher.js';

/** Options of {@link distillModel}: the trainer's, less the loss, which distillation sets. */
export interface DistillOptions extends Omit<TrainOptions, 'model' | 'loss' | 'teacher' | 'batchFeeds' | 'auxiliaryLosses'> {
  teacher: Model;
  student: Model;
  /** Softmax temperature T > 0 (default 4). */
  temperature?: number;
  /** Weight α ∈ [0, 1] of the hard-label cross-entropy (default 0.5). */
  alpha?: number;
  /**
   * Run the teacher once over the train split and feed its cached logits (default: true unless
   * `augment` is set, since augmented inputs differ every epoch). A precomputed cache may be given.
   */
  cacheTeacher?: boolean | TeacherCache;
  /**
   * Add the hidden-state loss (TinyBERT): weight · MSE between the student's hidden state through a
   * learned projection and the teacher's (zoo models; see hidden.ts). Needs the cached teacher. `true`
   * means weight 1.
   */
  hiddenLoss?: boolean | { weight: number };
  /** Called while the teacher's logits are being cached. */
  onTeacherProgress?: (done: number, total: number) => void;
}

export interface DistillResult extends TrainResult {
  /** How the teacher's logits reached the loss. */
  teacherMode: 'cached' | 'online';
  /** Seconds of teacher inference for the cache (online runs count it inside the training time). */
  teacherSeconds: number;
  /** The cache, to reuse (e.g. for another seed of the same student). */
  teacherCache?: TeacherCache;
}

/** Class count of a model's first output when declared, else undefined. */
export function declaredClasses(model: Model): number | undefined {
  const d = shapeOf(model.graph.outputs[0]?.type)?.[1];
  return typeof d === 'number' ? d : undefined;
}

/**
 * Checks that a teacher and a student can be distilled: numbers in range, same output rank and class
 * count. Throws E_USAGE naming what differs.
 */
export function checkDistillPair(teacher: Model, student: Model, temperature: number, alpha: number): void {
  checkLossSpec({ kind: 'distillation', temperature, alpha });
  const rank = (m: Model) => shapeOf(m.graph.outputs[0]?.type)?.length;
  if (!teacher.graph.outputs[0] || !student.graph.outputs[0]) throw new FrugalError('E_USAGE', `the ${teacher.graph.outputs[0] ? 'student' : 'teacher'} model has no outputs`);
  for (const [who, m] of [['teacher', teacher], ['student', student]] as const) {
    const r = rank(m);
    if (r !== undefined && r !== 2) throw new FrugalError('E_USAGE', `the ${who}'s output '${m.graph.outputs[0]!.name}' has rank ${r}; distillation needs logits [batch, classes]`);
  }
  const tc = declaredClasses(teacher);
  const sc = declaredClasses(student);
  if (tc !== undefined && sc !== undefined && tc !== sc) throw new FrugalError('E_USAGE', `the teacher predicts ${tc} classes and the student ${sc}; give a student with ${tc} outputs`);
}

/**
 * Distills `opts.teacher` into `opts.student` on `opts.dataset`; see {@link DistillOptions}. With
 * `measureEnergy`, `energy.run` covers the whole distillation: the teacher's inference (the logit cache,
 * or online per batch) and the student's training (`energy.epochs` stays empty: one window, not nested).
 */
export async function distillModel(opts: DistillOptions): Promise<DistillResult> {
  if (!opts.measureEnergy) return runDistill(opts);
  const monitor = new EnergyMonitor();
  const window = monitor.begin('distill');
  let result: DistillResult;
  let run: WindowResult;
  try {
    result = await runDistill({ ...opts, measureEnergy: false });
  } finally {
    run = await window.end();
    await monitor.close();
  }
  return { ...result, energy: { run, epochs: [] } };
}

async function runDistill(opts: DistillOptions): Promise<DistillResult> {
  const { teacher, student, temperature = 4, alpha = 0.5, cacheTeacher, onTeacherProgress, hiddenLoss, ...train } = opts;
  checkDistillPair(teacher, student, temperature, alpha);
  const loss = { kind: 'distillation' as const, temperature, alpha };
  const useCache = cacheTeacher === undefined ? !train.augment : cacheTeacher !== false;
  const hiddenWeight = hiddenLoss === true ? 1 : hiddenLoss ? hiddenLoss.weight : 0;
  if (hiddenLoss && !(hiddenWeight > 0 && Number.isFinite(hiddenWeight))) throw new FrugalError('E_USAGE', `the hidden-state loss weight must be a positive number, got ${hiddenWeight}`);
  if (hiddenWeight && !useCache) throw new FrugalError('E_USAGE', 'the hidden-state loss needs the cached teacher (turn augmentation off)');
  // Hidden-state loss: the teacher also outputs its hidden state; the student gets a projection head.
  const th = hiddenWeight ? hiddenState(teacher, 'teacher') : undefined;
  const sh = hiddenWeight ? hiddenState(student, 'student') : undefined;
  if (typeof cacheTeacher === 'object' && th && !cacheTeacher.hidden) throw new FrugalError('E_USAGE', 'the given teacher cache holds no hidden states; cache them with hiddenOutput');
  if (!useCache) {
    // Online: the trainer feeds the student's batch to the teacher, so both must take the same inputs.
    const names = (m: Model) => m.graph.inputs.map((v) => `${v.name}:${shapeOf(v.type)?.length}`).join(',');
    if (names(teacher) !== names(student)) throw new FrugalError('E_USAGE', `online distillation feeds the student's batch to the teacher, but they take different inputs (${names(teacher)} vs ${names(student)}); cache the teacher's outputs instead (no augmentation)`);
    const r = await trainModel({ ...train, model: student, loss, teacher });
    return { ...r, teacherMode: 'online', teacherSeconds: 0 };
  }
  const cache =
    typeof cacheTeacher === 'object'
      ? cacheTeacher
      : await cacheTeacherLogits(th ? withOutput(teacher, th.value, th.width) : teacher, train.dataset, {
          ...(th ? { hiddenOutput: th.value } : {}),
          ...(train.limit !== undefined ? { limit: train.limit } : {}),
          ...(train.intraOpThreads !== undefined ? { intraOpThreads: train.intraOpThreads } : {}),
          ...(train.ep ? { ep: train.ep } : {}),
          ...(onTeacherProgress ? { onProgress: onTeacherProgress } : {}),
        });
  const sc = declaredClasses(student);
  if (sc !== undefined && sc !== cache.classes) throw new FrugalError('E_USAGE', `the teacher predicts ${cache.classes} classes and the student ${sc}; give a student with ${cache.classes} outputs`);
  const model = th && sh ? withHiddenHead(student, sh, th.width, train.seed ?? 0) : student;
  const auxiliaryLosses = th ? [{ output: HIDDEN_OUTPUT, input: HIDDEN_TARGET_INPUT, weight: hiddenWeight }] : undefined;
  const r = await trainModel({ ...train, model, loss, batchFeeds: cachedTeacherFeeds(cache), ...(auxiliaryLosses ? { auxiliaryLosses } : {}) });
  if (th) {
    stripHiddenHead(r.model);
    r.trainable = r.trainable.filter((n) => n !== HIDDEN_PROJECTION);
  }
  return { ...r, teacherMode: 'cached', teacherSeconds: typeof cacheTeacher === 'object' ? 0 : cache.seconds, teacherCache: cache };
}

/**
 * The same student trained on hard labels alone (cross-entropy), with the same options as the
 * distillation run (seed, data order, epochs, schedule): the baseline the distilled student must beat.
 */
export async function trainBaseline(opts: Omit<DistillOptions, 'teacher' | 'temperature' | 'alpha' | 'cacheTeacher' | 'onTeacherProgress' | 'hiddenLoss'>): Promise<TrainResult> {
  const { student, ...train } = opts;
  return trainModel({ ...train, model: student, loss: { kind: 'cross-entropy' } });
}
