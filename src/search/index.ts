/** The main job and its building blocks: the demo over the embedded teachers, Pareto fronts, and the optimize search. */
export * from './demo.js';
export * from './pareto.js';
export * from './candidates.js';
export * from './cache.js';
export * from './validation.js';
export * from './optimize.js';
export * from './optimize-report.js';
