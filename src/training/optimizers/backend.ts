/**
 * The trainer's one interface to the optimizer update, {@link UpdateBackend}: it owns the weights and
 * the optimizer state, runs the training graph for a micro-batch, and applies an optimizer step. Three
 * backends sit behind it, picked by {@link createUpdateBackend}:
 *
 * - `simd` (the default): {@link SimdOptimizer}. The weights live in the kernels' memory and ORT writes
 *   float32 gradients straight into it (pre-allocated outputs), so a step moves no parameter data
 *   through JS.
 * - `js`: the reference optimizers (reference.ts), where WebAssembly SIMD is missing.
 * - `in-graph`: the update is part of the training graph (in-graph.ts, `fusedOptimizer: true`). The run
 *   feeds the optimizer state and step scalars and writes the updated weights and state into back
 *   buffers; `update` commits them. Each run is then a whole step (no accumulation) and clipping is in
 *   the graph too.
 *
 * Invariants, whatever the backend: weights and optimizer state change only in `update` (a step the
 * trainer skips, e.g. on a float16 overflow, leaves both untouched), and `state()`/`load()` use the
 * {@link OptimizerState} format, so checkpoints are interchangeable between backends.
 */
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../../errors.js';
import type { FrugalSession } from '../../runtime/index.js';
import { float16BitsToFloat32Array } from '../../onnx/packing.js';
import type { WeightBinding } from '../training-graph.js';
import { type FusedBinding, FusedState, fusedScalars } from './in-graph.js';
import { clipGradNorm, createOptimizer, type Optimizer, type OptimizerConfig, type OptimizerState } from './reference.js';
import { SimdOptimizer } from './simd.js';

/** Which backend runs the update: WebAssembly SIMD kernels, the JS reference loops, or ONNX ops in the training graph. */
export type UpdateBackendKind = 'simd' | 'js' | 'in-graph';

/** One run of the training graph. */
export interface BackendRun {
  /** The fetched outputs: the ones asked for, plus whatever the backend fetched for itself. */
  outputs: Record<string, ort.OnnxValue>;
  /**
   * The micro-batch's gradients as float32, parallel to the weights (float16 ones widened), for the caller
   * to unscale, accumulate and pass to `update`; valid until the next run. Empty for the in-graph
   * backend, whose gradients never leave the graph.
   */
  gradients: Float32Array[];
}

/**
 * The optimizer update as the trainer sees it, whatever runs it. Per micro-batch: `run`; per optimizer
 * step: `update` with the (accumulated) gradients, or nothing for a skipped step.
 */
export interface UpdateBackend {
  readonly kind: UpdateBackendKind;
  /**
   * The current fp32 weights by name (the master copy in mixed precision): feed them, read them, edit
   * them in place between steps (a pruning mask). The map stays the same object, but an entry may be a
   * new array after `update` (the in-graph backend double-buffers): look entries up, don't keep them.
   */
  readonly weights: ReadonlyMap<string, Float32Array>;
  /**
   * Runs the training graph once on `feeds` (which hold the weights from {@link weights}), fetching
   * `outputs` plus what the backend needs (gradients; or, in the graph, the updated weights and state,
   * after feeding the state and the scalars of a step at learning rate `lr`).
   */
  run(session: FrugalSession, feeds: Record<string, ort.Tensor>, outputs: readonly string[], lr: number): Promise<BackendRun>;
  /**
   * Takes one optimizer step at learning rate `lr`: clips `grads` to the global norm `clipNorm` when set
   * (in place), then updates weights and state. In the graph: commits the step the last `run` computed
   * (`grads` is empty, `lr` was fed to that run).
   */
  update(grads: Float32Array[], lr: number): void;
  /** The optimizer state (a copy), in the format every backend loads. */
  state(): OptimizerState;
  /** Restores a state from any backend's `state()` (same kind and parameter sizes; else E_USAGE). */
  load(state: OptimizerState): void;
}

/** What {@link createUpdateBackend} builds a backend from. */
export interface UpdateBackendOptions {
  /** The training graph's trainable weights: names, dims, gradient outputs, types, decay. */
  weights: readonly WeightBinding[];
  /** Their starting fp32 values by name; the backend takes them over (the SIMD one copies them into its memory). */
  initial: ReadonlyMap<string, Float32Array>;
  config: OptimizerConfig;
  /** Clip gradients to this global L2 norm before each step (already part of a fused graph). */
  clipNorm?: number;
  /** The update part of a fused training graph (`binding.fused`): selects the in-graph backend. */
  fused?: FusedBinding;
}

/**
 * The backend for a training graph: in the graph when it has the update (`fused`), else the SIMD kernels,
 * else (WebAssembly SIMD missing, or its memory beyond 4 GiB) the JS reference.
 */
export function createUpdateBackend(o: UpdateBackendOptions): UpdateBackend {
  if (o.fused) return new InGraphBackend(o.fused, o.weights, o.initial);
  const infos = o.weights.map((w) => ({ name: w.name, size: o.initial.get(w.name)!.length, decay: w.decay }));
  const simd = SimdOptimizer.create(infos, o.config);
  if (!simd) return new OptimizerBackend('js', createOptimizer(infos, o.config), o.weights, new Map(o.initial), undefined, o.clipNorm);
  // Zero copy: the weights live in the kernels' memory; ORT reads them there and writes float32
  // gradients into the gradient views, where the kernels read them (float16 ones are widened first).
  const weights = new Map<string, Float32Array>();
  const targets: Record<string, ort.Tensor> = {};
  o.weights.forEach((w, i) => {
    const view = simd.paramView(i);
    view.set(o.initial.get(w.name)!);
    weights.set(w.name, view);
    if (w.dtype === 'float32') targets[w.gradient] = new ort.Tensor('float32', simd.gradView(i), w.dims);
  });
  return new OptimizerBackend('simd', simd, o.weights, weights, targets, o.clipNorm);
}

/** The SIMD and JS backends: the graph outputs gradients and an {@link Optimizer} updates the weights in place. */
class OptimizerBackend implements UpdateBackend {
  /** The weights in binding order, as `Optimizer.step` takes them (the same arrays as the map's). */
  private readonly params: Float32Array[];
  private readonly gradients: string[];

  constructor(
    readonly kind: 'simd' | 'js',
    private readonly optimizer: Optimizer,
    private readonly bindings: readonly WeightBinding[],
    readonly weights: Map<string, Float32Array>,
    /** Pre-allocated gradient outputs (SIMD: views of its memory). */
    private readonly targets: Record<string, ort.Tensor> | undefined,
    private readonly clipNorm: number | undefined,
  ) {
    this.params = bindings.map((w) => weights.get(w.name)!);
    this.gradients = bindings.map((w) => w.gradient);
  }

  async run(session: FrugalSession, feeds: Record<string, ort.Tensor>, outputs: readonly string[], _lr: number): Promise<BackendRun> {
    const out = await session.runOrt(feeds, { outputs: [...outputs, ...this.gradients], ...(this.targets ? { targets: this.targets } : {}) });
    return { outputs: out, gradients: this.bindings.map((w) => gradientOf(out[w.gradient] as ort.Tensor)) };
  }

  update(grads: Float32Array[], lr: number): void {
    if (this.clipNorm !== undefined) clipGradNorm(grads, this.clipNorm);
    this.optimizer.step(this.params, grads, lr);
  }

  state(): OptimizerState {
    return this.optimizer.state();
  }

  load(state: OptimizerState): void {
    this.optimizer.load(state);
  }
}

/**
 * The in-graph backend: weights and state double-buffered in a {@link FusedState}. A run feeds the front
 * buffers and has ORT write the updated ones into the back buffers (pre-allocated fetches); `update` swaps
 * them to the front, so a run whose step is not taken changes nothing.
 */
class InGraphBackend implements UpdateBackend {
  readonly kind = 'in-graph' as const;
  readonly weights: Map<string, Float32Array>;
  private readonly fs: FusedState;
  private readonly dims: Map<string, number[]>;
  /** A run has written the back buffers and `update` has not committed them yet. */
  private pending = false;

  constructor(binding: FusedBinding, bindings: readonly WeightBinding[], initial: ReadonlyMap<string, Float32Array>) {
    this.weights = new Map(initial);
    this.fs = new FusedState(binding, this.weights);
    this.dims = new Map(bindings.map((w) => [w.name, w.dims]));
  }

  async run(session: FrugalSession, feeds: Record<string, ort.Tensor>, outputs: readonly string[], lr: number): Promise<BackendRun> {
    const b = this.fs.binding;
    for (const p of b.params) for (const s of Object.values(p.slots)) feeds[s.input] = new ort.Tensor('float32', this.fs.front.get(s.input)!, this.dims.get(p.weight)!);
    const scalars = fusedScalars(b, this.fs.step + 1, lr);
    b.scalars.forEach((name, i) => (feeds[name] = new ort.Tensor('float32', Float32Array.of(scalars[i]!), [])));
    const targets: Record<string, ort.Tensor> = {};
    for (const [name, buf, weight] of this.fs.outputTargets()) targets[name] = new ort.Tensor('float32', buf, this.dims.get(weight)!);
    const out = await session.runOrt(feeds, { outputs: [...outputs, ...Object.keys(targets)], targets });
    this.pending = true;
    return { outputs: out, gradients: [] };
  }

  update(grads: Float32Array[], _lr: number): void {
    if (!this.pending) throw new FrugalError('E_INTERNAL', 'in-graph optimizer: update without a run to commit');
    if (grads.length) throw new FrugalError('E_INTERNAL', 'in-graph optimizer: the gradients stay in the graph; update takes none');
    this.fs.swap();
    this.pending = false;
    for (const name of this.weights.keys()) this.weights.set(name, this.fs.weight(name));
  }

  state(): OptimizerState {
    return this.fs.state();
  }

  load(state: OptimizerState): void {
    this.fs.load(state);
    this.pending = false;
  }
}

/** A gradient output as float32 (mixed-precision graphs give float16 ones, as raw bit patterns). */
function gradientOf(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') {
    const d = t.data as ArrayBufferView;
    return float16BitsToFloat32Array(d instanceof Uint16Array ? d : new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2));
  }
  return t.data as Float32Array;
}
