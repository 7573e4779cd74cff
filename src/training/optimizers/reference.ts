/**
 * Optimizers over Float32Array parameters and gradients, in JS: the reference implementation. The
 * trainer runs the same updates as WebAssembly SIMD kernels by default (simd.ts) or inside the
 * ONNX training graph (in-graph.ts), both tested against these to float32 rounding, and uses
 * these where WebAssembly SIMD is unavailable.
 * Updates follow PyTorch's `SGD` and `AdamW` exactly (same order of operations), so hand-computed or
 * PyTorch-computed steps can check them.
 *
 * Invariant: the state is a plain object of numbers and Float32Arrays ({@link OptimizerState}); saving
 * and loading it (checkpoint.ts) restores the optimizer bit for bit.
 */
import { FrugalError } from '../../errors.js';

export const OPTIMIZER_KINDS = Object.freeze(['adamw', 'sgd'] as const);
export type OptimizerKind = (typeof OPTIMIZER_KINDS)[number];

export interface SgdConfig {
  kind: 'sgd';
  /** Momentum factor (default 0.9; 0 disables the buffer). */
  momentum?: number;
  /** L2 penalty added to the gradient, PyTorch-style (default 0). */
  weightDecay?: number;
  nesterov?: boolean;
}

export interface AdamWConfig {
  kind: 'adamw';
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
}

export type OptimizerConfig = SgdConfig | AdamWConfig;

/** Everything an optimizer needs to continue exactly where it stopped. */
export interface OptimizerState {
  kind: OptimizerKind;
  /** Optimizer steps taken. */
  step: number;
  /** Resolved hyper-parameters. */
  hyper: Record<string, number | boolean>;
  /** Per-parameter state buffers by slot (`momentum`; `m`, `v`), parallel to the parameter list. */
  slots: Record<string, Float32Array[]>;
}

/** One parameter as the optimizer sees it. */
export interface ParamInfo {
  name: string;
  size: number;
  /** Apply weight decay to it (default: rank ≥ 2, i.e. not biases or norm scales). */
  decay: boolean;
}

/** SGD's hyper-parameters with defaults applied, validated (E_USAGE naming the bad one). */
export function sgdHyper(cfg: Omit<SgdConfig, 'kind'> = {}): { momentum: number; weightDecay: number; nesterov: boolean } {
  const h = { momentum: cfg.momentum ?? 0.9, weightDecay: cfg.weightDecay ?? 0, nesterov: cfg.nesterov ?? false };
  if (!(h.momentum >= 0 && h.momentum < 1)) throw new FrugalError('E_USAGE', `sgd momentum must be in [0, 1), got ${h.momentum}`);
  if (!(h.weightDecay >= 0)) throw new FrugalError('E_USAGE', `weight decay must be ≥ 0, got ${h.weightDecay}`);
  return h;
}

/** AdamW's hyper-parameters with defaults applied, validated (E_USAGE naming the bad one). */
export function adamwHyper(cfg: Omit<AdamWConfig, 'kind'> = {}): { beta1: number; beta2: number; eps: number; weightDecay: number } {
  const h = { beta1: cfg.beta1 ?? 0.9, beta2: cfg.beta2 ?? 0.999, eps: cfg.eps ?? 1e-8, weightDecay: cfg.weightDecay ?? 0.01 };
  for (const [k, v] of [['beta1', h.beta1], ['beta2', h.beta2]] as const) {
    if (!(v >= 0 && v < 1)) throw new FrugalError('E_USAGE', `adamw ${k} must be in [0, 1), got ${v}`);
  }
  if (!(h.eps > 0)) throw new FrugalError('E_USAGE', `adamw eps must be > 0, got ${h.eps}`);
  if (!(h.weightDecay >= 0)) throw new FrugalError('E_USAGE', `weight decay must be ≥ 0, got ${h.weightDecay}`);
  return h;
}

/**
 * AdamW's per-step scalars for step `t` (1-based) at learning rate `lr`, in float64: the update
 * p·shrink − m'·stepScale / (√v' + epsScale) equals the reference p·shrink − stepSize·m' / (√v'/√c2 + ε)
 * with stepScale = stepSize·√c2 and epsScale = ε·√c2 (one division fewer per element). `shrink` applies to
 * decayed parameters only.
 */
export function adamwStepScalars(h: { beta1: number; beta2: number; eps: number; weightDecay: number }, t: number, lr: number): { stepScale: number; epsScale: number; shrink: number } {
  const sqrtC2 = Math.sqrt(1 - h.beta2 ** t);
  return { stepScale: (lr / (1 - h.beta1 ** t)) * sqrtC2, epsScale: h.eps * sqrtC2, shrink: 1 - lr * h.weightDecay };
}

/** Each optimizer's state buffers, one per parameter (the `slots` of {@link OptimizerState}). */
export const OPTIMIZER_SLOTS: Readonly<Record<OptimizerKind, readonly string[]>> = Object.freeze({ adamw: ['m', 'v'], sgd: ['momentum'] });

/** A config's hyper-parameters with defaults applied, validated; E_USAGE for an unknown kind. */
export function resolveHyper(cfg: OptimizerConfig): Record<string, number | boolean> {
  if (cfg.kind === 'adamw') return adamwHyper(cfg);
  if (cfg.kind === 'sgd') return sgdHyper(cfg);
  throw new FrugalError('E_USAGE', `unknown optimizer '${(cfg as { kind: string }).kind}' (expected ${OPTIMIZER_KINDS.join(', ')})`);
}

/**
 * An optimizer over parameter arrays it is handed each step: the JS reference (`createOptimizer`) and
 * the WebAssembly SIMD one (`SimdOptimizer`). The trainer drives them through an `UpdateBackend`
 * (backend.ts), which the in-graph update also implements.
 */
export interface Optimizer {
  readonly kind: OptimizerKind;
  readonly params: readonly ParamInfo[];
  /** Steps taken so far. */
  readonly stepCount: number;
  /** Updates `params[i]` in place from `grads[i]` with learning rate `lr`. */
  step(params: Float32Array[], grads: Float32Array[], lr: number): void;
  state(): OptimizerState;
  /** Restores a state from `state()` (same kind and parameter sizes; else E_USAGE). */
  load(state: OptimizerState): void;
}

function checkSizes(params: readonly ParamInfo[], arrays: Float32Array[], what: string): void {
  if (arrays.length !== params.length) throw new FrugalError('E_USAGE', `optimizer: expected ${params.length} ${what}, got ${arrays.length}`);
  arrays.forEach((a, i) => {
    if (a.length !== params[i]!.size) throw new FrugalError('E_USAGE', `optimizer: ${what} of '${params[i]!.name}' has ${a.length} elements, expected ${params[i]!.size}`);
  });
}

abstract class BaseOptimizer implements Optimizer {
  abstract readonly kind: OptimizerKind;
  readonly params: readonly ParamInfo[];
  stepCount = 0;
  protected slots: Record<string, Float32Array[]> = {};

  constructor(params: ParamInfo[], slotNames: readonly string[]) {
    this.params = Object.freeze(params.map((p) => ({ ...p })));
    for (const s of slotNames) this.slots[s] = params.map((p) => new Float32Array(p.size));
  }

  protected abstract hyper(): Record<string, number | boolean>;
  protected abstract update(i: number, p: Float32Array, g: Float32Array, lr: number): void;

  step(params: Float32Array[], grads: Float32Array[], lr: number): void {
    checkSizes(this.params, params, 'parameters');
    checkSizes(this.params, grads, 'gradients');
    this.stepCount++;
    for (let i = 0; i < params.length; i++) this.update(i, params[i]!, grads[i]!, lr);
  }

  state(): OptimizerState {
    const slots: Record<string, Float32Array[]> = {};
    for (const [k, v] of Object.entries(this.slots)) slots[k] = v.map((a) => a.slice());
    return { kind: this.kind, step: this.stepCount, hyper: this.hyper(), slots };
  }

  load(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new FrugalError('E_USAGE', `optimizer state is for '${state.kind}', this optimizer is '${this.kind}'`);
    for (const k of Object.keys(this.slots)) {
      const arrays = state.slots[k];
      if (!arrays) throw new FrugalError('E_USAGE', `optimizer state lacks slot '${k}'`);
      checkSizes(this.params, arrays, `'${k}' buffers`);
      this.slots[k] = arrays.map((a) => a.slice());
    }
    this.stepCount = state.step;
  }
}

/** SGD with momentum and L2 weight decay, as `torch.optim.SGD` (dampening 0). */
export class Sgd extends BaseOptimizer {
  readonly kind = 'sgd' as const;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;

  constructor(params: ParamInfo[], cfg: Omit<SgdConfig, 'kind'> = {}) {
    super(params, OPTIMIZER_SLOTS.sgd);
    ({ momentum: this.momentum, weightDecay: this.weightDecay, nesterov: this.nesterov } = sgdHyper(cfg));
  }

  protected hyper() {
    return { momentum: this.momentum, weightDecay: this.weightDecay, nesterov: this.nesterov };
  }

  protected update(i: number, p: Float32Array, g: Float32Array, lr: number): void {
    const buf = this.slots.momentum![i]!;
    const mu = this.momentum;
    const wd = this.params[i]!.decay ? this.weightDecay : 0;
    const nesterov = this.nesterov;
    for (let j = 0; j < p.length; j++) {
      const d = g[j]! + wd * p[j]!;
      const b = (buf[j] = mu * buf[j]! + d);
      p[j] = p[j]! - lr * (nesterov ? d + mu * b : mu > 0 ? b : d);
    }
  }
}

/** AdamW (decoupled weight decay), as `torch.optim.AdamW`. */
export class AdamW extends BaseOptimizer {
  readonly kind = 'adamw' as const;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(params: ParamInfo[], cfg: Omit<AdamWConfig, 'kind'> = {}) {
    super(params, OPTIMIZER_SLOTS.adamw);
    ({ beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay } = adamwHyper(cfg));
  }

  protected hyper() {
    return { beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay };
  }

  protected update(i: number, p: Float32Array, g: Float32Array, lr: number): void {
    const m = this.slots.m![i]!;
    const v = this.slots.v![i]!;
    const { beta1: b1, beta2: b2, eps } = this;
    const t = this.stepCount;
    const c1 = 1 - b1 ** t;
    const sqrtC2 = Math.sqrt(1 - b2 ** t);
    const stepSize = lr / c1;
    const shrink = 1 - lr * (this.params[i]!.decay ? this.weightDecay : 0);
    for (let j = 0; j < p.length; j++) {
      const gj = g[j]!;
      const mj = (m[j] = b1 * m[j]! + (1 - b1) * gj);
      const vj = (v[j] = b2 * v[j]! + (1 - b2) * gj * gj);
      p[j] = p[j]! * shrink - (stepSize * mj) / (Math.sqrt(vj) / sqrtC2 + eps);
    }
  }
}

/** Builds an optimizer from its config. */
export function createOptimizer(params: ParamInfo[], cfg: OptimizerConfig): Optimizer {
  if (cfg.kind === 'sgd') return new Sgd(params, cfg);
  if (cfg.kind === 'adamw') return new AdamW(params, cfg);
  throw new FrugalError('E_USAGE', `unknown optimizer '${(cfg as { kind: string }).kind}' (expected ${OPTIMIZER_KINDS.join(', ')})`);
}

/**
 * Scales `grads` in place so that their global L2 norm is at most `maxNorm`; returns the norm before
 * clipping (as `torch.nn.utils.clip_grad_norm_`, without its 1e-6 epsilon in the denominator).
 */
export function clipGradNorm(grads: Float32Array[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new FrugalError('E_USAGE', `gradient clipping norm must be > 0, got ${maxNorm}`);
  let sq = 0;
  for (const g of grads) for (let j = 0; j < g.length; j++) sq += g[j]! * g[j]!;
  const norm = Math.sqrt(sq);
  if (norm > maxNorm) {
    const s = maxNorm / norm;
    for (const g of grads) for (let j = 0; j < g.length; j++) g[j] = g[j]! * s;
  }
  return norm;
}

/**
 * Gradient accumulation over micro-batches: the result is the example-weighted mean of the micro-batch
 * gradients, Σ nᵢ gᵢ / Σ nᵢ, which for mean-reduced losses equals the gradient of one batch holding all
 * the examples (up to float rounding).
 */
export class GradientAccumulator {
  private sums: Float32Array[] | undefined;
  private examples = 0;
  micro = 0;

  /** Adds one micro-batch's gradients (of a loss averaged over its `count` examples). */
  add(grads: Float32Array[], count: number): void {
    // The buffers live across steps: the first add of a step overwrites instead of adding.
    if (!this.sums) this.sums = grads.map((g) => new Float32Array(g.length));
    const first = this.examples === 0;
    for (let i = 0; i < grads.length; i++) {
      const s = this.sums[i]!;
      const g = grads[i]!;
      if (first) for (let j = 0; j < g.length; j++) s[j] = count * g[j]!;
      else for (let j = 0; j < g.length; j++) s[j] = s[j]! + count * g[j]!;
    }
    this.examples += count;
    this.micro++;
  }

  /** The weighted mean so far (valid until the next `add`, which reuses the buffers); resets the count. */
  take(): Float32Array[] {
    if (!this.sums || this.examples === 0) throw new FrugalError('E_USAGE', 'no gradients accumulated');
    const inv = 1 / this.examples;
    for (const s of this.sums) for (let j = 0; j < s.length; j++) s[j] = s[j]! * inv;
    this.examples = 0;
    this.micro = 0;
    return this.sums;
  }
}
