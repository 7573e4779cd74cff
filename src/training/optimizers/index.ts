/**
 * Optimizers: SGD and AdamW (PyTorch's update rules, operation for operation) with three backends that
 * share hyper-parameters, state format and checkpoints. The trainer sees them through one interface,
 * `UpdateBackend` (backend.ts: it holds the weights and optimizer state, runs the training graph for a
 * micro-batch, and applies a step with `update`; `createUpdateBackend` picks the backend). Underneath,
 * the SIMD and JS backends are `Optimizer`s (step, state, load; reference.ts) fed gradients that the
 * graph outputs; the in-graph one computes the step in the graph and `update` commits it.
 *
 * - simd.ts: WebAssembly SIMD kernels (simd-kernels.ts) over one memory holding weights, gradients and
 *   state, zero copy with ORT. The trainer's default.
 * - reference.ts: plain JS loops, the reference the other two are tested against (to float32
 *   rounding); used where WebAssembly SIMD is missing.
 * - in-graph.ts: the update as ONNX ops inside the training graph (`fusedOptimizer: true`). Slower on
 *   CPU in every row of `npm run bench -- optimizer` and `-- train` (BENCHMARKS.md, 2026-11-26: one
 *   AdamW step over the MLP's 235k parameters 0.985 ms vs SIMD 0.143 ms; MLP train step 2.10 vs
 *   1.19 ms; CNN 11.9 vs 11.6 ms). Kept because it is the form that would keep weights and state on an
 *   accelerator (no per-step copy through JS) where an execution provider holds them.
 *   Its state lives in `FusedState` and follows the same `OptimizerState` format.
 */
export * from './reference.js';
export { SimdOptimizer } from './simd.js';
export * from './in-graph.js';
export * from './backend.js';
