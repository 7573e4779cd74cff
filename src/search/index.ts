/** The main job and its building blocks: the demo over the embedded teachers, and Pareto fronts. */
export * from './demo.js';
export * from './pareto.js';
