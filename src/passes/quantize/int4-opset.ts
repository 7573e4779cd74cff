/**
 * Raising a model's default-domain opset to 21, which blocked DequantizeLinear (int4 with `block_size`)
 * needs. Only safe when every op the model uses means the same at 21 as at its current opset; this is
 * not a version converter, so a model using an op whose signature changed in between is refused, with
 * the op named.
 */
import type { Model } from '../../ir/model.js';

/**
 * Ops whose inputs or attributes changed incompatibly, by the opset that changed them (ONNX's
 * Changelog.md, opsets 13 to 21). A model below that opset using the op cannot simply be relabelled.
 * Below opset 13 too much changed (Split, Squeeze, Unsqueeze, ReduceSum, Softmax...) to list here.
 */
const BREAKING_SINCE: Readonly<Record<string, number>> = Object.freeze({
  // Opset 18 moved `axes` from an attribute to an input.
  ReduceL1: 18,
  ReduceL2: 18,
  ReduceLogSum: 18,
  ReduceLogSumExp: 18,
  ReduceMax: 18,
  ReduceMean: 18,
  ReduceMin: 18,
  ReduceProd: 18,
  ReduceSumSquare: 18,
  // Opset 21 changed the shape of scale and bias from per-group to per-channel.
  GroupNormalization: 21,
});

/**
 * Sets the default opset to 21 (and the IR version to at least 10, which int4 tensors need). With
 * `dryRun`, changes nothing. Returns why it cannot, or undefined.
 */
export function raiseOpsetTo21(model: Model, dryRun: boolean): string | undefined {
  const from = model.opset;
  if (from >= 21) return undefined;
  if (from < 13) return `the model's opset ${from} is below 13`;
  for (const g of model.allGraphs()) {
    for (const n of g.nodes) {
      if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
      const since = BREAKING_SINCE[n.opType];
      if (since !== undefined && from < since) return `${n.opType} (node '${n.name}') changed meaning at opset ${since} (model is at ${from})`;
    }
  }
  if (!dryRun) {
    model.opsetImports.set(model.opsetImports.has('ai.onnx') ? 'ai.onnx' : '', 21);
    if (model.irVersion < 10) model.irVersion = 10;
  }
  return undefined;
}
