/**
 * Learning-rate schedules as pure functions of the optimizer step, so that a resumed run gets exactly
 * the rates of an uninterrupted one from the step count stored in its checkpoint.
 *
 *   warmup (step < W):  lr = base · (step + 1) / W
 *   constant:           lr = base
 *   cosine:             lr = min + (base − min) · ½ (1 + cos(π p))
 *   linear:             lr = min + (base − min) · (1 − p)
 *   with p = (step − W) / (total − W) clamped to [0, 1].
 */
import { FrugalError } from '../errors.js';

export const SCHEDULE_KINDS = Object.freeze(['constant', 'cosine', 'linear'] as const);
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

export interface ScheduleSpec {
  kind: ScheduleKind;
  /** Peak learning rate (reached at the end of warmup). */
  baseLr: number;
  /** Linear warmup steps (default 0). */
  warmupSteps?: number;
  /** Optimizer steps of the whole run (needed by cosine and linear decay). */
  totalSteps?: number;
  /** Learning rate at the end of decay (default 0). */
  minLr?: number;
}

/** Validates a schedule; throws E_USAGE naming the bad field. */
export function checkSchedule(s: ScheduleSpec): void {
  if (!SCHEDULE_KINDS.includes(s.kind)) throw new FrugalError('E_USAGE', `unknown schedule '${s.kind}' (expected ${SCHEDULE_KINDS.join(', ')})`);
  if (!(s.baseLr > 0 && Number.isFinite(s.baseLr))) throw new FrugalError('E_USAGE', `learning rate must be a positive number, got ${s.baseLr}`);
  const w = s.warmupSteps ?? 0;
  if (!Number.isInteger(w) || w < 0) throw new FrugalError('E_USAGE', `warmup steps must be an integer ≥ 0, got ${w}`);
  if (s.kind !== 'constant' && !(Number.isInteger(s.totalSteps) && s.totalSteps! >= 1)) {
    throw new FrugalError('E_USAGE', `the ${s.kind} schedule needs the run's total steps (a positive integer), got ${s.totalSteps}`);
  }
  const min = s.minLr ?? 0;
  if (!(min >= 0 && min <= s.baseLr)) throw new FrugalError('E_USAGE', `minimum learning rate must be in [0, ${s.baseLr}], got ${min}`);
}

/** The learning rate for 0-based optimizer step `step`. */
export function learningRateAt(s: ScheduleSpec, step: number): number {
  const w = s.warmupSteps ?? 0;
  if (step < w) return (s.baseLr * (step + 1)) / w;
  if (s.kind === 'constant') return s.baseLr;
  const total = s.totalSteps ?? 1;
  const span = total - w;
  const p = span <= 0 ? 1 : Math.min(1, Math.max(0, (step - w) / span));
  const min = s.minLr ?? 0;
  const f = s.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * p)) : 1 - p;
  return min + (s.baseLr - min) * f;
}
