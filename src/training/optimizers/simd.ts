/**
 * SGD and AdamW running as WebAssembly SIMD kernels (simd-kernels.ts) over one memory that holds every
 * parameter, its gradient and its optimizer state. Same updates, hyper-parameters, state format and
 * checkpoints as the JS reference optimizers (reference.ts), in float32 arithmetic (results agree with
 * the reference to float32 rounding).
 *
 * Zero copy: `paramView(i)` and `gradView(i)` are Float32Arrays inside the kernels' memory. The trainer
 * feeds the parameter views to ORT and has ORT write gradients straight into the gradient views
 * (pre-allocated outputs), so a step moves no parameter data through JS. `step()` also accepts any other
 * arrays (it copies them in and the updated parameters back out).
 */
import { FrugalError } from '../../errors.js';
import { type adamwHyper, adamwStepScalars, OPTIMIZER_SLOTS, type Optimizer, type OptimizerConfig, type OptimizerKind, type OptimizerState, type ParamInfo, resolveHyper, type sgdHyper } from './reference.js';
import { createSimdKernels, type SimdKernels } from './simd-kernels.js';

/** Byte offsets of one parameter's arrays in the kernels' memory; each holds `padded` floats. */
interface Slot {
  param: number;
  grad: number;
  state: Record<string, number>;
  padded: number;
}

export class SimdOptimizer implements Optimizer {
  readonly kind: OptimizerKind;
  readonly params: readonly ParamInfo[];
  stepCount = 0;
  private readonly hyper: Record<string, number | boolean>;
  private readonly layout: Slot[];
  /** Views made once: the memory never grows, so they stay valid (and a step allocates nothing). */
  private readonly paramViews: Float32Array[];
  private readonly gradViews: Float32Array[];

  private constructor(
    params: ParamInfo[],
    kind: OptimizerKind,
    hyper: Record<string, number | boolean>,
    private readonly k: SimdKernels,
    layout: Slot[],
  ) {
    this.kind = kind;
    this.params = Object.freeze(params.map((p) => ({ ...p })));
    this.hyper = hyper;
    this.layout = layout;
    this.paramViews = layout.map((L, i) => this.view(L.param, i));
    this.gradViews = layout.map((L, i) => this.view(L.grad, i));
  }

  /**
   * The optimizer for `params`, or undefined where WebAssembly SIMD (or a memory of the needed size, up
   * to 4 GiB) is unavailable: the caller then uses the JS optimizer.
   */
  static create(params: ParamInfo[], cfg: OptimizerConfig): SimdOptimizer | undefined {
    const hyper = resolveHyper(cfg);
    const slotNames = OPTIMIZER_SLOTS[cfg.kind];
    // Every array 16-byte aligned and padded to whole 4-float lanes (the padding stays zero).
    let at = 0;
    const take = (floats: number): number => {
      const offset = at;
      at += floats * 4;
      return offset;
    };
    const layout = params.map((p) => {
      const padded = Math.ceil(p.size / 4) * 4;
      return { param: take(padded), grad: take(padded), state: Object.fromEntries(slotNames.map((s) => [s, take(padded)])), padded };
    });
    const k = createSimdKernels(at);
    return k ? new SimdOptimizer(params, cfg.kind, hyper, k, layout) : undefined;
  }

  private view(offset: number, i: number): Float32Array {
    return new Float32Array(this.k.buffer, offset, this.params[i]!.size);
  }

  /** Parameter `i` inside the kernels' memory: feed it as is; `step` updates it in place. */
  paramView(i: number): Float32Array {
    return this.paramViews[i]!;
  }

  /** Where `step` reads gradient `i` from when given this very array: let ORT write into it. */
  gradView(i: number): Float32Array {
    return this.gradViews[i]!;
  }

  step(params: Float32Array[], grads: Float32Array[], lr: number): void {
    if (params.length !== this.params.length || grads.length !== this.params.length) {
      throw new FrugalError('E_USAGE', `optimizer: expected ${this.params.length} parameters and gradients, got ${params.length} and ${grads.length}`);
    }
    this.stepCount++;
    const t = this.stepCount;
    const adam = this.kind === 'adamw' ? adamwStepScalars(this.hyper as ReturnType<typeof adamwHyper>, t, lr) : undefined;
    for (let i = 0; i < params.length; i++) {
      const size = this.params[i]!.size;
      if (params[i]!.length !== size || grads[i]!.length !== size) throw new FrugalError('E_USAGE', `optimizer: '${this.params[i]!.name}' has ${size} elements, got arrays of ${params[i]!.length} and ${grads[i]!.length}`);
      const L = this.layout[i]!;
      const p = this.paramViews[i]!;
      const own = params[i] === p;
      if (!own) p.set(params[i]!);
      if (grads[i] !== this.gradViews[i]) this.gradViews[i]!.set(grads[i]!);
      const bytes = L.padded * 4;
      const decay = this.params[i]!.decay;
      if (adam) {
        const h = this.hyper as ReturnType<typeof adamwHyper>;
        this.k.adamw(L.param, L.grad, L.state.m!, L.state.v!, bytes, h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, decay ? adam.shrink : 1, adam.stepScale, adam.epsScale);
      } else {
        const h = this.hyper as ReturnType<typeof sgdHyper>;
        const mu = h.momentum;
        // dir = α·d + β·b': Nesterov d + μ·b', momentum b', plain d (b' = d then, as the JS loop stores).
        const [alpha, beta] = h.nesterov ? [1, mu] : mu > 0 ? [0, 1] : [1, 0];
        this.k.sgd(L.param, L.grad, L.state.momentum!, bytes, mu, decay ? h.weightDecay : 0, lr, alpha, beta);
      }
      if (!own) params[i]!.set(p);
    }
  }

  state(): OptimizerState {
    const slots: Record<string, Float32Array[]> = {};
    for (const s of OPTIMIZER_SLOTS[this.kind]) slots[s] = this.layout.map((L, i) => this.view(L.state[s]!, i).slice());
    return { kind: this.kind, step: this.stepCount, hyper: { ...this.hyper }, slots };
  }

  load(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new FrugalError('E_USAGE', `optimizer state is for '${state.kind}', this optimizer is '${this.kind}'`);
    for (const s of OPTIMIZER_SLOTS[this.kind]) {
      const arrays = state.slots[s];
      if (!arrays || arrays.length !== this.params.length) throw new FrugalError('E_USAGE', `optimizer state lacks slot '${s}'`);
      arrays.forEach((a, i) => {
        if (a.length !== this.params[i]!.size) throw new FrugalError('E_USAGE', `optimizer state: '${s}' buffer of '${this.params[i]!.name}' has ${a.length} elements, expected ${this.params[i]!.size}`);
        this.view(this.layout[i]!.state[s]!, i).set(a);
      });
    }
    this.stepCount = state.step;
  }
}
