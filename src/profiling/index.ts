/** Profiling: timers, statistics, energy meters, carbon, measurement windows, the profiler and its records. */
export * from './stats.js';
export * from './timer.js';
export * from './meters/types.js';
export * from './meters/rapl.js';
export * from './meters/nvml.js';
export * from './meters/nvidia-smi.js';
export * from './meters/estimate.js';
export * from './meters/tdp-table.js';
export * from './meters/registry.js';
export * from './carbon.js';
export * from './window.js';
export * from './rating.js';
export * from './records.js';
export * from './profiler.js';
