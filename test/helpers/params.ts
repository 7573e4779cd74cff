import { dataTypeInfo } from '../../src/ir/dtype.js';
import type { Value } from '../../src/ir/node.js';

/**
 * Number of trainable-looking weights: elements of floating-point initializers of rank ≥ 1. Scalar
 * constants (scales, epsilons) and integer shape/axes constants are graph plumbing, not parameters.
 */
export function countTrainableParameters(model: { graph: { initializers(): Value[] } }): number {
  let n = 0;
  for (const v of model.graph.initializers()) {
    const t = v.initializer!;
    if (t.dims.length >= 1 && dataTypeInfo(t.dtype).isFloat) n += t.numel;
  }
  return n;
}
