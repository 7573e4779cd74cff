/** Evaluation on labelled data (accuracy, loss) and comparison of two models' outputs, latency and size. */
export * from './evaluate.js';
export * from './compare.js';
