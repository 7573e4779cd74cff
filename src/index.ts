/**
 * Frugal's library entry: everything the CLI does. The IR and the ONNX codec (`loadModel`,
 * `saveModel`, `inspectModel`), passes (`applyQuantizeMode`, `PassManager`, each pass), the runtime
 * (`createSession`), datasets, the model zoo, training (`trainModel`), evaluation and comparison
 * (`evaluateModel`, `compareModels`), the profiler (`profileModels`), reports, and the main job
 * (`runDemo`). See README.md's "Library" section for an example.
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
export * from './passes/index.js';
export * from './search/index.js';
