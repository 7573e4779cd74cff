/** Training: autodiff over ONNX graphs, losses, optimizers, schedules, checkpoints and the trainer. */
export { differentiate, type DifferentiateOptions, type DifferentiateResult } from './autodiff/engine.js';
export { GRADIENT_RULES } from './autodiff/rules/index.js';
export * from './losses.js';
export * from './optimizers/index.js';
export * from './schedules.js';
export * from './checkpoint.js';
export * from './training-graph.js';
export * from './trainer.js';
export { prepareForTraining } from './prepare.js';
export * from './loss-scaling.js';
export * from './distill/index.js';
export * from './prune-recipe.js';
export * from './attention-recovery.js';
