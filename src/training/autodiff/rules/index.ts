import type { Node } from '../../../ir/node.js';
import { basicRules } from './basic.js';
import { elementwiseRules } from './elementwise.js';
import { nnRules } from './nn.js';
import { reduceRules } from './reduce.js';
import { shapeRules } from './shape.js';
import type { GradRule, GradRuleTable } from './types.js';

export type { GradRule, GradRuleTable } from './types.js';

/** The gradient rule table: op type (or `domain::opType`) → rule. */
export const GRADIENT_RULES: Readonly<GradRuleTable> = Object.freeze({
  ...basicRules,
  ...reduceRules,
  ...elementwiseRules,
  ...nnRules,
  ...shapeRules,
});

/** The rule for a node, or undefined. */
export function gradientRuleFor(node: Node): GradRule | undefined {
  const key = node.qualifiedOp;
  return Object.prototype.hasOwnProperty.call(GRADIENT_RULES, key) ? GRADIENT_RULES[key] : undefined;
}
