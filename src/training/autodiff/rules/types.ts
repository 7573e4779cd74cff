import type { Node, Value } from '../../../ir/node.js';
import type { GradContext } from '../context.js';

/**
 * A gradient rule: given the forward node, the gradients of its outputs (null where the loss does not
 * depend on an output) and which inputs need a gradient (`needs[i]`), returns the gradient of each
 * input (null where none is needed: skip the work for those). Rules append backward nodes with
 * `ctx.op`; everything a rule depends on arrives as an argument.
 */
export type GradRule = (ctx: GradContext, node: Node, dOut: Array<Value | null>, needs: readonly boolean[]) => Array<Value | null>;
export type GradRuleTable = Record<string, GradRule>;
