/** Training: autodiff over ONNX graphs, losses, optimizers, schedules, checkpoints and the trainer. */
export { differentiate, type DifferentiateOptions, type DifferentiateResult } from './autodiff/engine.js';
export { GRADIENT_RULES } from './autodiff/rules/index.js';
export * from './losses.js';
export * from './optimizers.js';
export * from './schedules.js';
export * from './checkpoint.js';
export * from './training-graph.js';
export * from './trainer.js';
export { prepareForTraining } from './prepare.js';
export * from './fused-optimizer.js';
export * from './loss-scaling.js';
export { SimdOptimizer } from './simd-optimizer.js';
export * from './attention-recovery.js';
