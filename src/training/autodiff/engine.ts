import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import type { Value } from '../../ir/node.js';
import { inferShapes } from '../../ir/shape-inference.js';
import { GradContext } from './context.js';
import { zerosLike } from './rules/helpers.js';
import { GRADIENT_RULES, gradientRuleFor } from './rules/index.js';

export interface DifferentiateOptions {
  /** The scalar to differentiate (usually the loss output). */
  loss: Value;
  /** Values to differentiate with respect to (trainable weights, usually graph inputs). */
  wrt: Value[];
  /** Value fed into the backward pass as d(loss)/d(loss), e.g. a loss-scale constant; default 1. */
  seed?: Value;
}

export interface DifferentiateResult {
  /** Gradient value for each `wrt` entry, in order (zeros where the loss does not depend on it). */
  grads: Value[];
}

/**
 * Reverse-mode automatic differentiation over an ONNX graph, in place: appends the backward pass to
 * `model.graph` as ordinary ONNX ops and returns the gradient values. One rule per op type, from the
 * table in `rules/`; an op on the path from a weight to the loss without a rule is an E_UNSUPPORTED
 * error naming the op and the node. Nodes that do not lie between a `wrt` value and the loss get no
 * gradient work, nor do inputs a rule marks non-differentiable (indices, shapes, conditions).
 */
export function differentiate(model: Model, opts: DifferentiateOptions): DifferentiateResult {
  if (model.opset < 13) {
    throw new FrugalError('E_UNSUPPORTED', `training needs default-domain opset ≥ 13 (this model imports ${model.opset}); re-export the model with a newer opset`);
  }
  const graph = model.graph;
  inferShapes(model);
  const forwardNodes = [...graph.nodes];
  // Values that depend on a wrt value (forward reachability).
  const dependsOnWrt = new Set<Value>(opts.wrt);
  for (const n of forwardNodes) {
    if (n.inputs.some((v) => v && dependsOnWrt.has(v))) for (const o of n.outputs) if (o) dependsOnWrt.add(o);
  }
  if (!dependsOnWrt.has(opts.loss)) {
    throw new FrugalError('E_USAGE', `the loss '${opts.loss.name}' does not depend on any of the trainable values`);
  }
  // Values the loss depends on (backward reachability), restricted to those that depend on a wrt value.
  const onPath = new Set<Value>([opts.loss]);
  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const n = forwardNodes[i]!;
    if (!n.outputs.some((o) => o && onPath.has(o))) continue;
    for (const v of n.inputs) if (v && dependsOnWrt.has(v)) onPath.add(v);
  }

  const ctx = new GradContext(model);
  const grads = new Map<Value, Value>();
  const accumulate = (v: Value, g: Value) => {
    const prev = grads.get(v);
    grads.set(v, prev ? ctx.op('Add', [prev, g]) : g);
  };
  grads.set(opts.loss, opts.seed ?? onesLike(ctx, opts.loss));

  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i]!;
    const dOut = node.outputs.map((o) => (o ? grads.get(o) ?? null : null));
    if (dOut.every((g) => g === null)) continue;
    const needs = node.inputs.map((v) => v !== null && onPath.has(v));
    if (!needs.some(Boolean)) continue;
    const rule = gradientRuleFor(node);
    if (!rule) {
      throw new FrugalError(
        'E_UNSUPPORTED',
        `no gradient rule for ${node.describe()}: it lies between a trainable weight and the loss (ops with rules: ${Object.keys(GRADIENT_RULES).sort().join(', ')}); freeze the weights before it or replace the op`,
      );
    }
    const dIn = ctx.within(node, () => rule(ctx, node, dOut, needs));
    node.inputs.forEach((v, k) => {
      const g = dIn[k];
      if (v && needs[k] && g) accumulate(v, g);
    });
  }
  const result = opts.wrt.map((w) => grads.get(w) ?? zerosLike(ctx, w));
  return { grads: result };
}

function onesLike(ctx: GradContext, v: Value): Value {
  const one = ctx.scalar(1, ctx.elemType(v));
  return ctx.rank(v) === 0 ? one : ctx.op('Expand', [one, ctx.op('Shape', [v])]);
}

