/**
 * Static int8 quantization in QDQ form: QuantizeLinear → DequantizeLinear pairs on activations (ranges
 * calibrated on real data) and int8 weights behind DequantizeLinear, around the ops ONNX Runtime's CPU
 * provider fuses into integer kernels (DQ → Conv → Q becomes QLinearConv, and so on). The float graph
 * stays readable and every runtime can run it; ORT recognises the pattern.
 *
 * Roles (QDQ_OPS): 'compute' ops get their float inputs and outputs quantized with their own calibrated
 * ranges; 'passthrough' ops (MaxPool, Reshape, Transpose...) are quantized only when their input is,
 * and their output reuses the input's scale and zero point (the values are a subset of the input's, so
 * the extra Q/DQ is lossless, and ORT drops it). 'activation' ops (Relu, Clip) right after a quantized op
 * are removed when activations are asymmetric uint8: the producer's output is quantized with the
 * activation's range, whose zero point is then qmin, so quantization itself clamps at 0 (ORT does the
 * same). Biases become int32 with scale = input scale × weight scale and zero point 0.
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import { inferShapes } from '../../ir/shape-inference.js';
import { elemTypeOf } from '../../ir/types.js';
import { decodeModel, encodeModelToBytes } from '../../onnx/index.js';
import { type CpuFeatures, type Int8WeightScheme, recommendInt8Scheme } from '../../runtime/cpu-features.js';
import type { Pass, PassResult } from '../pass.js';
import { calibrate, type CalibrationData, type CalibrationMethod } from './calibrate.js';
import { checkExclusions, exclusionReason, type ExclusionOptions, smallTensorReason, StatsCollector } from '../exclusions.js';
import { computeScaleZeroPoint, quantizeWeight, quantRange, roundHalfEven, type ScaleZeroPoint } from './quant-math.js';
import { floatConstant } from './tensors.js';
import { int8DynamicPass } from './int8-dynamic.js';
import { addConstant, dropUnusedInitializers, emitBefore } from '../../ir/rewrite.js';

/** How each op takes part in QDQ quantization (a table, so new ops are one line). */
export const QDQ_OPS: Readonly<Record<string, 'compute' | 'passthrough' | 'activation'>> = Object.freeze({
  Conv: 'compute',
  MatMul: 'compute',
  Gemm: 'compute',
  Add: 'compute',
  Mul: 'compute',
  AveragePool: 'compute',
  GlobalAveragePool: 'compute',
  Concat: 'compute',
  Relu: 'activation',
  Clip: 'activation',
  MaxPool: 'passthrough',
  Reshape: 'passthrough',
  Flatten: 'passthrough',
  Transpose: 'passthrough',
  Squeeze: 'passthrough',
  Unsqueeze: 'passthrough',
  Dropout: 'passthrough',
  Identity: 'passthrough',
});

export interface Int8StaticOptions extends ExclusionOptions {
  /** Real inputs to calibrate on (the train split of a dataset, or your own feeds). */
  calibration: CalibrationData;
  /** Range method (default 'minmax'). */
  method?: CalibrationMethod;
  /** For method 'percentile' (default 99.999). */
  percentile?: number;
  /** Weight scheme; default what `recommendInt8Scheme` picks for this CPU. */
  weightScheme?: Int8WeightScheme;
  cpu?: CpuFeatures;
  /** One weight scale per output channel (Conv axis 0, MatMul/Gemm the output axis). Default false. */
  perChannel?: boolean;
  /** Activations: 'uint8' asymmetric (default) or 'int8' symmetric. */
  activations?: 'uint8' | 'int8';
  /** Constant Gather tables (embeddings) → int8 table + DequantizeLinear after the Gather (default true). */
  gather?: boolean;
}

/** The static int8 (QDQ) pass. Calibration runs inside `run`, through ONNX Runtime. */
export function int8StaticPass(opts: Int8StaticOptions): Pass {
  if (!opts?.calibration) throw new FrugalError('E_USAGE', 'int8 static quantization needs calibration data (calibrationFeeds(model, "mnist" | "spam" | folder))');
  if (opts.activations !== undefined && opts.activations !== 'uint8' && opts.activations !== 'int8') throw new FrugalError('E_USAGE', `activations must be 'uint8' or 'int8', got '${opts.activations}'`);
  return {
    name: 'quantize-int8-static',
    checkPreconditions(model) {
      checkExclusions(model, opts);
      if (model.opset < 10) throw new FrugalError('E_UNSUPPORTED', `QDQ quantization needs ONNX opset 10 or later (QuantizeLinear); the model imports opset ${model.opset}`);
    },
    run: (model) => runStatic(model, opts),
  };
}

/** A tensor's quantization: its own calibrated range, or the params of another tensor (pass-through). */
type Plan = { range: string } | { same: Value };

async function runStatic(model: Model, opts: Int8StaticOptions): Promise<PassResult> {
  const rec = opts.weightScheme ? { scheme: opts.weightScheme, reason: 'chosen by the caller' } : recommendInt8Scheme(opts.cpu);
  const g = model.graph;
  const stats = new StatsCollector();
  const signedAct = opts.activations === 'int8';
  const perChannel = opts.perChannel === true && model.opset >= 13;
  const plans = new Map<Value, Plan>();
  const computeNodes: Node[] = [];
  const removable: Array<{ act: Node; producer: Node }> = [];
  // Element types: declared ones, completed by inference on a private copy (exports often leave
  // intermediate values untyped). A value whose type stays unknown is NOT float: quantizing or tapping
  // an int64 shape tensor for calibration breaks the model.
  const inferredTypes = inferElemTypes(model);
  const elemOf = (v: Value) => elemTypeOf(v.type) ?? inferredTypes.get(v.name);
  const isFloat = (v: Value | null | undefined) => !!v && !v.initializer && elemOf(v) === DataType.FLOAT;
  const accepted = new Set<Node>();
  const quantizeOutput = (n: Node, rangeOf: string) => {
    const out = n.outputs[0];
    if (out && !out.isGraphOutput && out.uses.length && isFloat(out) && !plans.has(out)) plans.set(out, { range: rangeOf });
  };

  for (const node of g.nodes) {
    const role = node.domain === '' || node.domain === 'ai.onnx' ? QDQ_OPS[node.opType] : undefined;
    if (!role) continue;
    const excluded = exclusionReason(node, opts);
    if (excluded) {
      stats.skip(node, excluded);
      continue;
    }
    if (role === 'passthrough') {
      const x = node.inputs[0];
      if (node.opType === 'Dropout' && node.outputs[1]?.uses.length) continue;
      if (x && plans.has(x) && isFloat(node.outputs[0])) {
        const out = node.outputs[0]!;
        if (!out.isGraphOutput) plans.set(out, { same: x });
        accepted.add(node);
      }
      continue;
    }
    if (role === 'activation') {
      const x = node.inputs[0];
      const p = x?.producer;
      const out = node.outputs[0];
      const clipOk = node.opType === 'Relu' || clipsAtZero(node);
      if (!signedAct && clipOk && p && accepted.has(p) && QDQ_OPS[p.opType] === 'compute' && x!.uses.length === 1 && !x!.isGraphOutput && out && !out.isGraphOutput) {
        removable.push({ act: node, producer: p });
        plans.set(x!, { range: out.name });
        // Readers of the removed output (MaxPool...) see the producer's output and its parameters.
        plans.set(out, { same: x! });
        continue;
      }
      if (!x || !plans.has(x)) {
        stats.skip(node, `${node.opType} left float: its input is not quantized`);
        continue;
      }
      if (node.opType === 'Relu') {
        // max(0, dequantized value) is 0 or a value the input's quantization already represents:
        // the output reuses the input's parameters, losslessly.
        if (out && !out.isGraphOutput && isFloat(out)) plans.set(out, { same: x });
        accepted.add(node);
        continue;
      }
      // Clip with other bounds: its own calibrated output range, like a compute op.
    }
    // Attention adds its mask (−10⁴ on padding) to the scores right before Softmax: one int8 scale
    // cannot hold both, and the scores collapse (measured: −0.58 accuracy point on the spam teacher).
    if (node.outputs[0]?.consumers().some((c) => c.opType === 'Softmax')) {
      stats.skip(node, 'feeds a Softmax (attention scores plus mask): left float to keep the scores\' precision');
      continue;
    }
    const reason = planCompute(node, opts, isFloat);
    if (reason) {
      stats.skip(node, reason);
      continue;
    }
    accepted.add(node);
    computeNodes.push(node);
    for (const v of node.inputs) if (isFloat(v) && !plans.has(v!)) plans.set(v!, { range: v!.name });
    quantizeOutput(node, node.outputs[0]!.name);
  }

  if (!computeNodes.length) return { model, modified: false, stats: stats.finish(rec.scheme, rec.reason, { calibration: null }) };

  // Calibrate every tensor that has its own range, on the model as it was given.
  const rangeNames = [...new Set([...plans.values()].flatMap((p) => ('range' in p ? [p.range] : [])))];
  const ranges = await calibrate(model, rangeNames, opts.calibration, { method: opts.method, percentile: opts.percentile, activations: signedAct ? 'int8' : 'uint8', elemTypes: inferredTypes });
  // The activation input of each compute node, before Q/DQ insertion rewires it (bias scales need it).
  const activationIn = new Map(computeNodes.map((n) => [n, n.inputs[0]!]));

  // Remove the activations folded into their producer's quantization.
  for (const { act, producer } of removable) {
    act.outputs[0]!.replaceAllUsesWith(producer.outputs[0]!);
    g.removeNode(act, true);
    stats.done(act, `removed: folded into ${producer.name}'s output quantization (zero point at qmin)`);
  }

  const actType = signedAct ? DataType.INT8 : DataType.UINT8;
  const actRange = quantRange(signedAct ? 'int8' : 'uint8', { symmetric: signedAct });
  const params = new Map<Value, ScaleZeroPoint>();
  const paramsOf = (v: Value): ScaleZeroPoint => {
    const known = params.get(v);
    if (known) return known;
    const plan = plans.get(v)!;
    let p: ScaleZeroPoint;
    if ('same' in plan) p = paramsOf(plan.same);
    else {
      const r = ranges.get(plan.range)!;
      p = computeScaleZeroPoint(r.min, r.max, actRange, signedAct);
    }
    params.set(v, p);
    return p;
  };
  let pairs = 0;
  for (const v of plans.keys()) {
    if (!v.graph || (v.uses.length === 0 && !v.isGraphOutput)) continue; // removed with an activation
    insertQdq(g, v, paramsOf(v), actType);
    pairs++;
  }

  const replaced = new Set<Value>();
  for (const node of computeNodes) {
    const detail = quantizeWeights(g, node, activationIn.get(node)!, rec.scheme, perChannel, paramsOf, plans, stats, replaced);
    stats.done(node, detail);
  }
  dropUnusedInitializers(replaced);
  // Embedding tables: no QDQ kernel exists for a constant Gather, so they get the dynamic pass's
  // treatment (int8 table, DequantizeLinear after the Gather): same bytes saved, rows dequantized only.
  if (opts.gather !== false) {
    const gr = await int8DynamicPass({ excludeNodes: opts.excludeNodes, excludeOpTypes: [...(opts.excludeOpTypes ?? []), 'MatMul', 'Gemm', 'Conv'], minElements: opts.minElements, perChannel: opts.perChannel, weightScheme: 's8' }).run(model);
    const gs = gr.stats as { quantized: typeof stats.quantized; skipped: typeof stats.skipped; weightBytesBefore: number; weightBytesAfter: number };
    for (const q of gs.quantized) stats.quantized.push(q);
    for (const k of gs.skipped) if (k.opType === 'Gather') stats.skipped.push(k);
    stats.bytesBefore += gs.weightBytesBefore;
    stats.bytesAfter += gs.weightBytesAfter;
  }
  return {
    model,
    modified: true,
    stats: stats.finish(rec.scheme, rec.reason, {
      activations: signedAct ? 'int8 symmetric' : 'uint8 asymmetric',
      perChannel,
      qdqPairs: pairs,
      calibration: { method: opts.method ?? 'minmax', source: opts.calibration.source, examples: opts.calibration.count, tensors: rangeNames.length },
    }),
  };
}

/** Element type of every value, by shape/type inference on a copy (the caller's model is untouched). */
function inferElemTypes(model: Model): Map<string, number> {
  const copy = decodeModel(encodeModelToBytes(model));
  try {
    inferShapes(copy);
  } catch {
    // Inference is best effort here: values it could not type simply stay unknown (not float).
  }
  const types = new Map<string, number>();
  for (const v of copy.graph.values.values()) {
    const t = elemTypeOf(v.type);
    if (t !== undefined) types.set(v.name, t);
  }
  return types;
}

/** True for a Clip whose lower bound is a constant 0 (so it is a bounded Relu). */
function clipsAtZero(node: Node): boolean {
  const min = node.inputs[1] ? floatConstant(node.inputs[1]) : undefined;
  if (min) return min.length === 1 && min[0] === 0;
  return node.attrFloat('min', -Infinity) === 0;
}

/** Checks a compute node; returns why it stays float, or undefined. */
function planCompute(node: Node, opts: Int8StaticOptions, isFloat: (v: Value | null | undefined) => boolean): string | undefined {
  const op = node.opType;
  if (!isFloat(node.outputs[0])) return 'output is not float32 (or its type is unknown)';
  if (op === 'Conv' || op === 'Gemm' || (op === 'MatMul' && node.inputs[1]?.initializer)) {
    if (!isFloat(node.inputs[0])) return 'input is not a float32 activation';
    const w = node.inputs[1];
    const data = floatConstant(w);
    if (!data) return op === 'Gemm' ? 'Gemm weight is not a float32 constant' : 'weight is not a float32 constant';
    if (w!.isGraphInput) return `weight '${w!.name}' is also a graph input (overridable at run time)`;
    if (op !== 'Conv' && w!.initializer!.dims.length !== 2) return `weight rank ${w!.initializer!.dims.length} (only 2-D weights are quantized)`;
    if (op === 'Gemm' && node.attrInt('transA', 0) !== 0) return 'Gemm with transA=1';
    return smallTensorReason(data.length, opts, 0);
  }
  const floats = node.inputs.filter((v) => v && !v.initializer);
  if (op === 'Clip' || op === 'Relu') return isFloat(node.inputs[0]) ? undefined : 'input is not float32';
  if (node.inputs.some((v) => v?.initializer && (op === 'Add' || op === 'Mul' || op === 'Concat'))) return `${op} with a constant operand stays float`;
  if (!floats.length || !floats.every(isFloat)) return 'inputs are not float32 activations';
  return undefined;
}

/** Inserts Q → DQ after `v`'s producer; every reader of `v` reads the DQ output instead. */
function insertQdq(g: Graph, v: Value, p: ScaleZeroPoint, actType: number): void {
  const readers = [...v.uses];
  const scale = addConstant(g, `${v.name}_scale`, DataType.FLOAT, [], Float32Array.of(p.scale));
  const zp = addConstant(g, `${v.name}_zero_point`, actType, [], actType === DataType.INT8 ? Int8Array.of(p.zeroPoint) : Uint8Array.of(p.zeroPoint));
  const q = g.createValue(`${v.name}_quantized`);
  const dq = g.createValue(`${v.name}_dequantized`);
  const producer = v.producer;
  const anchor = producer ? g.nodes[g.nodes.indexOf(producer) + 1] : g.nodes[0];
  const specs = [
    { opType: 'QuantizeLinear', name: g.uniqueNodeName(`${v.name}_QuantizeLinear`), inputs: [v, scale, zp], outputs: [q] },
    { opType: 'DequantizeLinear', name: g.uniqueNodeName(`${v.name}_DequantizeLinear`), inputs: [q, scale, zp], outputs: [dq] },
  ];
  if (anchor) emitBefore(g, anchor, specs);
  else for (const s of specs) g.addNode(s);
  for (const u of readers) u.node.setInput(u.index, dq);
}

/** Weights (int8 + DQ) and bias (int32 + DQ) of a compute node; returns a description for stats. */
function quantizeWeights(
  g: Graph,
  node: Node,
  x: Value,
  scheme: Int8WeightScheme,
  perChannel: boolean,
  paramsOf: (v: Value) => ScaleZeroPoint,
  plans: Map<Value, Plan>,
  stats: StatsCollector,
  replaced: Set<Value>,
): string {
  const op = node.opType;
  const w = node.inputs[1];
  if (!(op === 'Conv' || op === 'Gemm' || op === 'MatMul') || !w?.initializer) return 'QDQ on activations';
  const data = floatConstant(w)!;
  const dims = w.initializer.dims;
  const axis = !perChannel ? undefined : op === 'Conv' ? 0 : op === 'Gemm' && node.attrInt('transB', 0) !== 0 ? 0 : 1;
  const q = quantizeWeight(data, dims, { scheme, axis });
  const channels = axis === undefined ? 1 : dims[axis]!;
  const shape = axis === undefined ? [] : [channels];
  const wq = addConstant(g, `${w.name}_quantized`, q.dtype, dims, q.data);
  const ws = addConstant(g, `${w.name}_scale`, DataType.FLOAT, shape, q.scales);
  const wzp = addConstant(g, `${w.name}_zero_point`, q.dtype, shape, q.zeroPoints);
  const wdq = g.createValue(`${w.name}_dequantized`);
  emitBefore(g, node, [{ opType: 'DequantizeLinear', name: g.uniqueNodeName(`${w.name}_DequantizeLinear`), inputs: [wq, ws, wzp], outputs: [wdq], attributes: axis === undefined ? {} : { axis } }]);
  node.setInput(1, wdq);
  replaced.add(w);
  stats.bytesBefore += data.byteLength;
  stats.bytesAfter += q.data.byteLength + q.scales.byteLength + q.zeroPoints.byteLength;
  let detail = `QDQ, ${axis === undefined ? 'per-tensor' : 'per-channel'} ${scheme} weights (error ${(q.relError * 100).toFixed(2)}%)`;
  // Bias: int32 with scale = input scale × weight scale, zero point 0, so the integer kernel adds it to
  // its int32 accumulator directly.
  const b = node.inputs[2];
  const bData = floatConstant(b);
  const flatBias = bData && (op === 'Conv' || (b!.initializer!.dims.length <= 2 && bData.length === (op === 'Gemm' && node.attrInt('transB', 0) ? dims[0] : dims[1])));
  const unitGemm = op !== 'Gemm' || (node.attrFloat('alpha', 1) === 1 && node.attrFloat('beta', 1) === 1);
  if (b && bData && flatBias && unitGemm && plans.has(x) && !b.isGraphInput) {
    const xs = paramsOf(x).scale;
    const n = bData.length;
    const scales = Float32Array.from({ length: n }, (_, i) => Math.fround(xs * q.scales[axis === undefined ? 0 : i]!));
    const bq = new Int32Array(n);
    let overflow = false;
    for (let i = 0; i < n; i++) {
      const s = scales[axis === undefined ? 0 : i]!;
      const v = s > 0 ? roundHalfEven(bData[i]! / s) : 0;
      if (Math.abs(v) > 2 ** 31 - 1) overflow = true;
      bq[i] = v;
    }
    if (overflow) return `${detail}; bias left float (int32 overflow)`;
    const bdims = b.initializer!.dims;
    const bqv = addConstant(g, `${b.name}_quantized`, DataType.INT32, bdims, bq);
    const bsv = addConstant(g, `${b.name}_scale`, DataType.FLOAT, axis === undefined ? [] : [n], axis === undefined ? scales.subarray(0, 1) : scales);
    const bzv = addConstant(g, `${b.name}_zero_point`, DataType.INT32, axis === undefined ? [] : [n], new Int32Array(axis === undefined ? 1 : n));
    const bdq = g.createValue(`${b.name}_dequantized`);
    const battr: Record<string, number> = axis === undefined ? {} : { axis: bdims.length - 1 };
    emitBefore(g, node, [{ opType: 'DequantizeLinear', name: g.uniqueNodeName(`${b.name}_DequantizeLinear`), inputs: [bqv, bsv, bzv], outputs: [bdq], attributes: battr }]);
    node.setInput(2, bdq);
    replaced.add(b);
    stats.bytesBefore += bData.byteLength;
    stats.bytesAfter += bq.byteLength;
    detail += ', int32 bias';
  }
  return detail;
}
