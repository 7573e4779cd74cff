/** The protobuf-free IR: models, graphs, nodes, values, tensors, and the algorithms over them. */
export * from './dtype.js';
export * from './types.js';
export * from './tensor.js';
export * from './node.js';
export * from './graph.js';
export * from './model.js';
export * from './builder.js';
export * from './traversal.js';
export * from './verify.js';
export * from './rewrite.js';
