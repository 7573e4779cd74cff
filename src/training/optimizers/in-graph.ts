/**
 * The optimizer update as ONNX ops appended to the training graph, so that one `session.run` does
 * forward + backward + (clipping) + update. Weights and optimizer state go in as graph inputs, the
 * updated weights and state come out as graph outputs; the step-dependent scalars (learning rate, Adam's
 * bias corrections) are scalar inputs computed in JS in float64 and fed each step.
 *
 * The arithmetic follows the JS reference optimizers (reference.ts) operation for operation, so the two
 * agree to float32 rounding (the JS loop keeps m and v unrounded within a step; the graph rounds every
 * intermediate to float32):
 *
 *   AdamW:  m' = β1·m + (1−β1)·g;  v' = β2·v + (1−β2)·g²;  p' = p·shrink − (stepSize·m') / (√v' / √c2 + ε)
 *           with stepSize = lr / (1 − β1ᵗ), √c2 = √(1 − β2ᵗ), shrink = 1 − lr·wd (decayed params only),
 *           computed as p·shrink − m'·(stepSize·√c2) / (√v' + ε·√c2) (the same value, one pass fewer)
 *   SGD:    d = g + wd·p;  b' = μ·b + d;  p' = p − lr·(nesterov ? d + μ·b' : μ > 0 ? b' : d)
 *
 * Global-norm clipping runs first when asked: norm = √(Σ ReduceSumSquare(gᵢ)), every gᵢ scaled by
 * min(1, maxNorm / norm). That equals clipGradNorm's "scale by maxNorm/norm when norm > maxNorm" (at
 * norm = 0 the quotient is +inf and the min is 1), with the squared sum in float32 instead of float64.
 *
 * Opt-in (`fusedOptimizer: true`): on CPU the trainer's default WebAssembly SIMD update (simd.ts)
 * is faster, since each op here is a full pass over memory. Gradient accumulation is not fused: with
 * `accumulate > 1` the trainer fetches gradients and runs the SIMD/JS optimizer (micro-batches mostly
 * only accumulate, and the graph would otherwise need the update disabled on those runs).
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Value } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import { tensorType } from '../../ir/types.js';
import { adamwHyper, adamwStepScalars, type OptimizerConfig, type OptimizerState, resolveHyper } from './reference.js';

/** One parameter to update in the graph. */
export interface FusedParam {
  /** The weight's graph input. */
  weight: Value;
  /** Its gradient in the graph. */
  grad: Value;
  dims: number[];
  /** Apply weight decay (rank ≥ 2 by the trainer's convention). */
  decay: boolean;
}

/** Names of one parameter's update inputs and outputs. */
export interface FusedParamBinding {
  weight: string;
  newWeight: string;
  /** Slot name → [state input, updated state output] (`m`, `v` for AdamW; `momentum` for SGD). */
  slots: Record<string, { input: string; output: string }>;
}

/** How to feed and read the update part of a fused training graph. */
export interface FusedBinding {
  kind: OptimizerConfig['kind'];
  params: FusedParamBinding[];
  /** Scalar float inputs fed each step (see {@link fusedScalars}). */
  scalars: string[];
  /** Resolved hyper-parameters (same as the JS optimizer's state().hyper). */
  hyper: Record<string, number | boolean>;
  clipNorm?: number;
}

const SCALARS: Record<OptimizerConfig['kind'], string[]> = { adamw: ['lr', 'step_size', 'shrink', 'eps_c2'], sgd: ['lr'] };

/**
 * Appends the clipping (when `clipNorm` is set) and the update of every param to `graph`, adding state
 * and scalar inputs and the updated weights and state as graph outputs. The caller sets `graph.outputs`
 * order; the new outputs are appended after the existing ones.
 */
export function appendOptimizerUpdate(graph: Graph, params: FusedParam[], cfg: OptimizerConfig, clipNorm?: number): FusedBinding {
  const hyper = resolveHyper(cfg);
  const op = (opType: string, inputs: Value[], name?: string): Value => {
    const node = graph.addNode({ opType, name: graph.uniqueNodeName(`optim/${opType}`), inputs, ...(name ? { outputNames: [name] } : {}) });
    return node.outputs[0]!;
  };
  const consts = new Map<number, Value>();
  const c = (x: number): Value => {
    let v = consts.get(x);
    if (!v) consts.set(x, (v = graph.addInitializer(graph.uniqueName('optim/const'), Tensor.fromArray(DataType.FLOAT, [], Float32Array.of(x)))));
    return v;
  };
  const scalarNames = SCALARS[cfg.kind];
  const scalars: Record<string, Value> = {};
  for (const s of scalarNames) scalars[s] = graph.addInput(graph.uniqueName(`optim.${s}`), tensorType(DataType.FLOAT, []));

  let grads = params.map((p) => p.grad);
  if (clipNorm !== undefined) {
    if (!(clipNorm > 0)) throw new FrugalError('E_USAGE', `gradient clipping norm must be > 0, got ${clipNorm}`);
    const sq = grads.map((g) => graph.addNode({ opType: 'ReduceSumSquare', name: graph.uniqueNodeName('optim/clip_sq'), inputs: [g], attributes: { keepdims: 0 } }).outputs[0]!);
    const total = sq.length === 1 ? sq[0]! : graph.addNode({ opType: 'Sum', name: 'optim/clip_sum', inputs: sq }).outputs[0]!;
    const scale = op('Min', [c(1), op('Div', [c(clipNorm), op('Sqrt', [total])])]);
    grads = grads.map((g) => op('Mul', [g, scale]));
  }

  const out: FusedParamBinding[] = [];
  const outputs: Value[] = [];
  const stateInput = (p: FusedParam, slot: string): Value => graph.addInput(graph.uniqueName(`${p.weight.name}.${slot}`), tensorType(DataType.FLOAT, p.dims));
  const named = (v: Value, name: string, dims: number[]): Value => {
    // Every output gets its own Identity-free name: rename the producing node's output value.
    graph.renameValue(v, graph.uniqueName(name));
    v.type = tensorType(DataType.FLOAT, dims);
    outputs.push(v);
    return v;
  };
  params.forEach((p, i) => {
    const g = grads[i]!;
    const w = p.weight;
    const slots: FusedParamBinding['slots'] = {};
    let newW: Value;
    if (cfg.kind === 'adamw') {
      const b1 = hyper.beta1 as number;
      const b2 = hyper.beta2 as number;
      const m = stateInput(p, 'm');
      const v = stateInput(p, 'v');
      const m2 = named(op('Add', [op('Mul', [c(b1), m]), op('Mul', [c(1 - b1), g])]), `${w.name}.m.new`, p.dims);
      const v2 = named(op('Add', [op('Mul', [c(b2), v]), op('Mul', [c(1 - b2), op('Mul', [g, g])])]), `${w.name}.v.new`, p.dims);
      // stepSize·m' / (√v'/√c2 + ε) = m'·(stepSize·√c2) / (√v' + ε·√c2): one pass fewer, scalars from JS.
      const upd = op('Div', [op('Mul', [m2, scalars.step_size!]), op('Add', [op('Sqrt', [v2]), scalars.eps_c2!])]);
      const kept = p.decay && (hyper.weightDecay as number) > 0 ? op('Mul', [w, scalars.shrink!]) : w;
      newW = op('Sub', [kept, upd]);
      slots.m = { input: m.name, output: m2.name };
      slots.v = { input: v.name, output: v2.name };
    } else {
      const mu = hyper.momentum as number;
      const wd = p.decay ? (hyper.weightDecay as number) : 0;
      const b = stateInput(p, 'momentum');
      const d = wd > 0 ? op('Add', [g, op('Mul', [c(wd), w])]) : g;
      // b' = μ·b + d; with μ = 0 the JS loop stores d (0·b + d), so does the graph.
      const b2 = named(mu > 0 ? op('Add', [op('Mul', [c(mu), b]), d]) : op('Identity', [d]), `${w.name}.momentum.new`, p.dims);
      const dir = hyper.nesterov ? op('Add', [d, op('Mul', [c(mu), b2])]) : mu > 0 ? b2 : d;
      newW = op('Sub', [w, op('Mul', [scalars.lr!, dir])]);
      slots.momentum = { input: b.name, output: b2.name };
    }
    named(newW, `${w.name}.new`, p.dims);
    out.push({ weight: w.name, newWeight: newW.name, slots });
  });
  graph.outputs.push(...outputs);
  return { kind: cfg.kind, params: out, scalars: scalarNames.map((s) => scalars[s]!.name), hyper, ...(clipNorm !== undefined ? { clipNorm } : {}) };
}

/**
 * The scalar feeds of optimizer step `t` (1-based, the step being taken) at learning rate `lr`, computed
 * in float64 exactly as the JS optimizers compute them, in the order of `binding.scalars`.
 */
export function fusedScalars(binding: FusedBinding, t: number, lr: number): number[] {
  if (binding.kind === 'sgd') return [lr];
  const k = adamwStepScalars(binding.hyper as ReturnType<typeof adamwHyper>, t, lr);
  return [lr, k.stepScale, k.shrink, k.epsScale];
}

/**
 * Weights and optimizer state for a fused graph, double-buffered: each step reads the front buffers and
 * ORT writes the results into the back buffers (pre-allocated outputs, no new arrays per step), then the
 * two swap. Reading and writing the same buffer in one run would be unsafe: ORT may update a weight
 * before the backward pass has finished reading it.
 */
export class FusedState {
  /** Front (current) buffers by graph input name: weights and slots. */
  readonly front = new Map<string, Float32Array>();
  private readonly back = new Map<string, Float32Array>();
  /** Steps taken. */
  step = 0;

  constructor(
    readonly binding: FusedBinding,
    weights: Map<string, Float32Array>,
  ) {
    for (const p of binding.params) {
      const w = weights.get(p.weight);
      if (!w) throw new FrugalError('E_USAGE', `fused optimizer: no weights for '${p.weight}'`);
      this.front.set(p.weight, w);
      this.back.set(p.weight, new Float32Array(w.length));
      for (const s of Object.values(p.slots)) {
        this.front.set(s.input, new Float32Array(w.length));
        this.back.set(s.input, new Float32Array(w.length));
      }
    }
  }

  /** The current weight of `name` (changes identity after each step: read it, don't keep it). */
  weight(name: string): Float32Array {
    return this.front.get(name)!;
  }

  /** [output name, back buffer, weight it belongs to] for pre-allocated fetches. */
  outputTargets(): Array<[string, Float32Array, string]> {
    const t: Array<[string, Float32Array, string]> = [];
    for (const p of this.binding.params) {
      t.push([p.newWeight, this.back.get(p.weight)!, p.weight]);
      for (const s of Object.values(p.slots)) t.push([s.output, this.back.get(s.input)!, p.weight]);
    }
    return t;
  }

  /** After a run wrote the back buffers: swap them to the front. */
  swap(): void {
    for (const [k, b] of this.back) {
      this.back.set(k, this.front.get(k)!);
      this.front.set(k, b);
    }
    this.step++;
  }

  /** The optimizer state in the JS optimizers' format (checkpoints are interchangeable). */
  state(): OptimizerState {
    const slotNames = Object.keys(this.binding.params[0]?.slots ?? {});
    const slots: Record<string, Float32Array[]> = {};
    for (const s of slotNames) slots[s] = this.binding.params.map((p) => this.front.get(p.slots[s]!.input)!.slice());
    return { kind: this.binding.kind, step: this.step, hyper: { ...this.binding.hyper }, slots };
  }

  /** Restores optimizer state saved by {@link state} or by a JS optimizer of the same kind. */
  load(state: OptimizerState): void {
    if (state.kind !== this.binding.kind) throw new FrugalError('E_USAGE', `optimizer state is for '${state.kind}', this optimizer is '${this.binding.kind}'`);
    this.binding.params.forEach((p, i) => {
      for (const [slot, io] of Object.entries(p.slots)) {
        const a = state.slots[slot]?.[i];
        const dst = this.front.get(io.input)!;
        if (!a || a.length !== dst.length) throw new FrugalError('E_USAGE', `optimizer state lacks a matching '${slot}' buffer for '${p.weight}'`);
        dst.set(a);
      }
    });
    this.step = state.step;
  }
}
