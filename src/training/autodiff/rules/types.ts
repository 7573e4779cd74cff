import type { Node, Value } from '../../../ir/node.js';
import type { GradContext } from '../context.js';

/**
 * A gradient rule: given the forward node and the gradients of its outputs (null where the loss does
 * not depend on an output), returns the gradient of each input (null where none is needed: check
 * `ctx.needs(i)` and skip work for inputs that need none). Rules append backward nodes with `ctx.op`.
 */
export type GradRule = (ctx: GradContext, node: Node, dOut: Array<Value | null>) => Array<Value | null>;
export type GradRuleTable = Record<string, GradRule>;
