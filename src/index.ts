/**
 * Frugal's library entry: the IR, the ONNX codec, the runtime, datasets and the model zoo.
 * Everything the CLI does is available here; see README.md for an example.
 */
export * from './errors.js';
export * from './ir/index.js';
export { inferShapes, SHAPE_RULES, type InferenceOptions, type InferenceReport } from './ir/shape-inference.js';
export { estimateCost, countParameters, type CostReport, type ParameterCount } from './ir/cost.js';
export { inspectModel, summarizeStructure, requiredInputs, type ModelSummary, type IoSummary } from './ir/summary.js';
export * from './onnx/index.js';
export * from './runtime/index.js';
export * from './data/index.js';
export * from './zoo/index.js';
export { Rng, createRng } from './util/rng.js';
export * from './training/index.js';
export * from './evaluation/index.js';
export * from './profiling/index.js';
export * from './report/index.js';
