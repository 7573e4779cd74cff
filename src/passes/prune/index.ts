/** Pruning passes: unstructured magnitude and N:M (masks, checker, gradual schedule) and structured pruning that removes channels, units and heads. */
export * from './weights.js';
export * from './magnitude.js';
export * from './dependency.js';
export * from './slicing.js';
export * from './heads.js';
export * from './structured.js';
export * from './sparse-storage.js';
