/** onnxruntime-node sessions, execution providers, tensor conversion and feeds. */
export * from './providers.js';
export * from './tensors.js';
export * from './session.js';
export * from './feeds.js';
export * from './summary.js';
