import type { Node } from '../../../ir/node.js';
import { activationRules } from './activations.js';
import { basicRules } from './basic.js';
import { convRules } from './conv.js';
import { elementwiseRules } from './elementwise.js';
import { gemmRules } from './gemm.js';
import { indexingRules } from './indexing.js';
import { normRules } from './norm.js';
import { poolRules } from './pool.js';
import { reduceRules } from './reduce.js';
import { shapeRules } from './shape.js';
import type { GradRule, GradRuleTable } from './types.js';

export type { GradRule, GradRuleTable } from './types.js';

/**
 * The gradient rule table: op type (or `domain::opType`) → rule, one family file each: identity and
 * constants (basic), reductions, elementwise arithmetic, activations, MatMul/Gemm, Conv, pooling,
 * normalizations (ORT's CPU provider runs the last three in float32 only), shape ops, indexing.
 */
export const GRADIENT_RULES: Readonly<GradRuleTable> = Object.freeze({
  ...basicRules,
  ...reduceRules,
  ...elementwiseRules,
  ...activationRules,
  ...gemmRules,
  ...convRules,
  ...poolRules,
  ...normRules,
  ...shapeRules,
  ...indexingRules,
});

/** The rule for a node, or undefined. */
export function gradientRuleFor(node: Node): GradRule | undefined {
  const key = node.qualifiedOp;
  return Object.prototype.hasOwnProperty.call(GRADIENT_RULES, key) ? GRADIENT_RULES[key] : undefined;
}
