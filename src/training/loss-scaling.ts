/**
 * Dynamic loss scaling for mixed-precision (fp16) training.
 *
 * float16 has 10 mantissa bits and no value below 6e-8: gradients of ordinary networks often fall under
 * that and flush to zero. The backward pass is therefore seeded with a large scale S instead of 1 (the
 * training graph's `loss_scale` input), so every gradient comes out as S·∂loss/∂w, and the update divides
 * S out in float32 on the fp32 master weights. S is chosen dynamically, with the policy of mixed-precision
 * training (Micikevicius et al., 2018) and the defaults of PyTorch's GradScaler: start at 2^16; a step
 * whose gradients hold an inf or NaN overflowed, so it is skipped (no weight or optimizer-state change)
 * and S is halved; after `growthInterval` finite steps in a row S is doubled, to probe for the largest
 * scale that does not overflow.
 */
import { FrugalError } from '../errors.js';

export interface LossScalerOptions {
  /** Starting scale (default 2^16). */
  initScale?: number;
  /** Factor after `growthInterval` finite steps (default 2). */
  growthFactor?: number;
  /** Factor after an overflow (default 0.5). */
  backoffFactor?: number;
  /** Finite steps in a row before growing (default 2000). */
  growthInterval?: number;
}

/** What a checkpoint keeps of the scaler, so a resumed run scales exactly as an uninterrupted one. */
export interface LossScalerState {
  scale: number;
  /** Finite steps since the last growth or overflow. */
  goodSteps: number;
  /** Steps skipped for overflow over the whole run. */
  skippedSteps: number;
}

/** Smallest and largest scales: below 1 the scaling no longer helps; 2^24 is a cap far above any scale that leaves float16 gradients finite. */
const MIN_SCALE = 1;
const MAX_SCALE = 2 ** 24;

export class DynamicLossScaler {
  scale: number;
  goodSteps = 0;
  skippedSteps = 0;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;

  constructor(opts: LossScalerOptions = {}) {
    this.scale = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(this.scale >= MIN_SCALE && this.scale <= MAX_SCALE)) throw new FrugalError('E_USAGE', `initial loss scale must be in [${MIN_SCALE}, 2^24], got ${this.scale}`);
    if (!(this.growthFactor > 1)) throw new FrugalError('E_USAGE', `loss-scale growth factor must be > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) throw new FrugalError('E_USAGE', `loss-scale backoff factor must be in (0, 1), got ${this.backoffFactor}`);
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval >= 1)) throw new FrugalError('E_USAGE', `loss-scale growth interval must be an integer ≥ 1, got ${this.growthInterval}`);
  }

  /**
   * Divides scaled gradients (already widened to float32) by the scale in place. Returns false when one
   * is inf or NaN: the step must then be skipped (see {@link update}).
   */
  unscale(grads: Float32Array[]): boolean {
    const inv = 1 / this.scale; // a power of two (for the default factors): the product is exact
    let finite = true;
    for (const g of grads) {
      for (let j = 0; j < g.length; j++) {
        const x = g[j]! * inv;
        if (x - x !== 0) finite = false; // inf − inf and NaN − NaN are NaN
        g[j] = x;
      }
    }
    return finite;
  }

  /** Records a step's outcome: `finite` false halves the scale (the step was skipped), else counts toward growth. */
  update(finite: boolean): void {
    if (!finite) {
      this.scale = Math.max(MIN_SCALE, this.scale * this.backoffFactor);
      this.goodSteps = 0;
      this.skippedSteps++;
      return;
    }
    if (++this.goodSteps >= this.growthInterval) {
      this.scale = Math.min(MAX_SCALE, this.scale * this.growthFactor);
      this.goodSteps = 0;
    }
  }

  state(): LossScalerState {
    return { scale: this.scale, goodSteps: this.goodSteps, skippedSteps: this.skippedSteps };
  }

  load(s: LossScalerState): void {
    if (!(s.scale >= MIN_SCALE && s.scale <= MAX_SCALE) || !Number.isInteger(s.goodSteps) || !Number.isInteger(s.skippedSteps)) {
      throw new FrugalError('E_USAGE', `invalid loss-scaler state ${JSON.stringify(s)}`);
    }
    this.scale = s.scale;
    this.goodSteps = s.goodSteps;
    this.skippedSteps = s.skippedSteps;
  }
}
