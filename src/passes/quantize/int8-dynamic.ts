/**
 * Dynamic int8 quantization: constant weights are stored as int8; activations are quantized at run
 * time (uint8, asymmetric, range taken from each batch), so no calibration data is needed.
 *
 *   MatMul(A, W) / Gemm(A, W, C)  →  com.microsoft::DynamicQuantizeMatMul(A, Wq, w_scale, w_zp?, bias?)
 *     (form 'standard': DynamicQuantizeLinear(A) → MatMulInteger → Cast → Mul(a_scale × w_scale) → Add,
 *      plain ONNX ops that ORT's optimizer fuses into the same kernel)
 *   Gather(table, ids) (embeddings) →  Gather(table_q, ids) → DequantizeLinear
 *   Conv: left float by default (see below); `conv: 'weight-only'` → DequantizeLinear(W_q) → Conv,
 *     `conv: 'integer'` → DynamicQuantizeLinear → ConvInteger → Cast → Mul → Add.
 *
 * Why Conv stays float by default: measured on the MNIST teacher (batch 64, one thread), weight-only
 * int8 Conv ran at 1.5× the fp32 latency (a Conv whose weight is not a constant loses ORT's blocked
 * NCHWc kernels), and onnxruntime-web has no ConvInteger kernel ("ConvInteger is not implemented").
 * CNNs belong to the static (QDQ) pass, which ORT turns into QLinearConv. ORT's CPU ConvInteger takes
 * uint8 weights with one zero point only, so its weights are u8 (asymmetric per tensor, or symmetric
 * with zero point 128 per channel).
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import { elemTypeOf } from '../../ir/types.js';
import { type CpuFeatures, type Int8WeightScheme, recommendInt8Scheme } from '../../runtime/cpu-features.js';
import type { Pass, PassResult } from '../pass.js';
import { checkExclusions, type ExclusionOptions, exclusionSkip, smallWeightSkip, StatsCollector } from '../exclusions.js';
import { applyRules, type AnyRewriteRule, type RewriteRule, Skip, skip } from '../rules.js';
import { quantizeWeight, type QuantizedWeight } from './quant-math.js';
import { floatConstant, requireOpset, transpose2d } from './tensors.js';
import { addConstant, dropUnusedInitializers, type Emit, emitBefore, replaceNode } from '../../ir/rewrite.js';

export interface Int8DynamicOptions extends ExclusionOptions {
  /**
   * Weight scheme: 's8' (full range), 's8-reduced' (7-bit) or 'u8'. Default: what `recommendInt8Scheme`
   * picks for this CPU (7-bit on x64 without VNNI, where full range saturates).
   */
  weightScheme?: Int8WeightScheme;
  /** CPU to choose the default scheme for (default: this machine). */
  cpu?: CpuFeatures;
  /** One scale per output column (MatMul/Gemm) or output channel (Conv) instead of one per tensor (default false). */
  perChannel?: boolean;
  /** 'fused' (default): com.microsoft::DynamicQuantizeMatMul. 'standard': only ai.onnx ops. */
  form?: 'fused' | 'standard';
  /**
   * Conv: 'float' (default: left alone, fastest), 'weight-only' (int8 weights + DequantizeLinear, float
   * arithmetic: smaller file, slower in ORT) or 'integer' (ConvInteger: onnxruntime-web lacks it).
   */
  conv?: 'weight-only' | 'integer' | 'float';
  /** Store constant Gather tables (embeddings) as int8 with a DequantizeLinear after the Gather (default true). */
  gather?: boolean;
}

/** The dynamic int8 pass. */
export function int8DynamicPass(opts: Int8DynamicOptions = {}): Pass {
  if (opts.form !== undefined && opts.form !== 'fused' && opts.form !== 'standard') throw new FrugalError('E_USAGE', `form must be 'fused' or 'standard', got '${opts.form}'`);
  if (opts.conv !== undefined && !(opts.conv in CONV_NOTES)) throw new FrugalError('E_USAGE', `conv must be 'float', 'weight-only' or 'integer', got '${String(opts.conv)}'`);
  return {
    name: 'quantize-int8-dynamic',
    checkPreconditions(model) {
      checkExclusions(model, opts);
      // The fused form's DynamicQuantizeMatMul is a com.microsoft op, versioned apart from the default
      // domain: it serves models of any opset (PP-OCR rec/cls import opset 9). The standard form needs
      // DynamicQuantizeLinear (opset 11); Conv and Gather check their own ops per node.
      if ((opts.form ?? 'fused') === 'standard' && model.opset < 11) {
        throw new FrugalError('E_UNSUPPORTED', `int8 dynamic quantization in the standard form needs ONNX opset 11 or later (DynamicQuantizeLinear); the model imports opset ${model.opset} (the default fused form works at any opset)`);
      }
    },
    run: (model) => runDynamic(model, opts),
  };
}

const CONV_NOTES = Object.freeze({
  'weight-only': 'int8 weights + DequantizeLinear, float arithmetic (smaller file; slower than fp32 in ORT)',
  integer: 'ConvInteger (not available in onnxruntime-web)',
  float: "Conv left float (dynamic int8 Conv is slower in ORT and ConvInteger is missing in onnxruntime-web; use int8-static for CNNs, or conv: 'weight-only' | 'integer')",
});

interface Ctx {
  g: Graph;
  model: Model;
  opts: Int8DynamicOptions;
  scheme: Int8WeightScheme;
  stats: StatsCollector;
  replaced: Set<Value>;
}

function runDynamic(model: Model, opts: Int8DynamicOptions): PassResult {
  const rec = opts.weightScheme ? { scheme: opts.weightScheme, reason: 'chosen by the caller' } : recommendInt8Scheme(opts.cpu);
  const g = model.graph;
  const ctx: Ctx = { g, model, opts, scheme: rec.scheme, stats: new StatsCollector(), replaced: new Set() };
  applyRules(g, INT8_DYNAMIC_RULES, ctx, { exclude: (n) => exclusionSkip(n, opts), report: ctx.stats });
  dropUnusedInitializers(ctx.replaced);
  const modified = ctx.stats.quantized.length > 0;
  return {
    model,
    modified,
    stats: ctx.stats.finish(rec.scheme, rec.reason, {
      form: opts.form ?? 'fused',
      perChannel: opts.perChannel ?? false,
      conv: CONV_NOTES[opts.conv ?? 'float'],
    }),
  };
}

/** Common checks on a weight input; returns its data or why to skip. */
function weightOf(ctx: Ctx, node: Node, index: number): Float32Array | Skip {
  const w = node.inputs[index];
  if (!w?.initializer) return skip('not-constant', `input ${index} (weight) is not a constant`);
  if (w.isGraphInput) return skip('not-constant', `weight '${w.name}' is also a graph input (overridable at run time)`);
  const data = floatConstant(w);
  if (!data) return skip('not-float', `weight '${w.name}' is not float32`);
  return smallWeightSkip(data.length, ctx.opts) ?? data;
}

/** A weight that passed the checks: its value, float32 data and dims. */
interface WeightMatch {
  wv: Value;
  data: Float32Array;
  dims: readonly number[];
}

function activationIsFloat(v: Value | null | undefined): boolean {
  const t = elemTypeOf(v?.type);
  return t === undefined || t === DataType.FLOAT;
}

/** MatMul(A, W) / Gemm(A, W, C) with a constant 2-D W → DynamicQuantizeMatMul (or the standard chain). */
const matMulRule: RewriteRule<Ctx, WeightMatch & { a: Value }> = {
  ops: ['MatMul', 'Gemm'],
  check(node, ctx) {
    const a = node.inputs[0];
    if (!a || a.initializer) return skip('constant-input', 'input A is a constant (constant folding, not quantization, applies)');
    if (!activationIsFloat(a)) return skip('not-float', 'input A is not float32');
    const wv = node.inputs[1]!;
    const data = weightOf(ctx, node, 1);
    if (data instanceof Skip) return data;
    const dims = wv.initializer!.dims;
    if (dims.length !== 2) return skip('shape', `weight rank ${dims.length} (only 2-D weights are quantized)`);
    if (node.opType === 'Gemm' && node.attrInt('transA', 0) !== 0) return skip('shape', 'Gemm with transA=1');
    return { a, wv, data, dims };
  },
  rewrite: (node, m, ctx) => quantizeMatMul(ctx, node, m),
};

function quantizeMatMul(ctx: Ctx, node: Node, { a, wv, data, dims }: WeightMatch & { a: Value }): string {
  const { g } = ctx;
  const isGemm = node.opType === 'Gemm';
  const transB = isGemm && node.attrInt('transB', 0) !== 0;
  const [K, N] = transB ? [dims[1]!, dims[0]!] : [dims[0]!, dims[1]!];
  const w = transB ? transpose2d(data, dims[0]!, dims[1]!) : data;
  const alpha = isGemm ? node.attrFloat('alpha', 1) : 1;
  const beta = isGemm ? node.attrFloat('beta', 1) : 1;
  const q = quantizeWeight(w, [K, N], { scheme: ctx.scheme, axis: ctx.opts.perChannel ? 1 : undefined });
  // Gemm's alpha scales the product: fold it into the weight scales.
  const scales = alpha === 1 ? q.scales : q.scales.map((s) => s * alpha);
  const base = node.name || `${node.opType}_${wv.name}`;
  const wq = addConstant(g, `${wv.name}_quantized`, q.dtype, [K, N], q.data);
  const ws = addConstant(g, `${wv.name}_scale`, DataType.FLOAT, q.axis === undefined ? [] : [N], scales);
  const wzp = needsZeroPoint(q) ? addConstant(g, `${wv.name}_zero_point`, q.dtype, q.axis === undefined ? [] : [N], q.zeroPoints) : null;
  // Gemm's C: a constant of N elements (or a scalar) becomes the fused bias; anything else an Add.
  const c = isGemm ? node.inputs[2] ?? null : null;
  let bias: Value | null = null;
  const tail: Emit[] = [];
  if (c) {
    const cData = floatConstant(c);
    const cDims = c.initializer?.dims ?? [];
    if (cData && cDims.reduce((p, d) => p * d, 1) === cData.length && (cData.length === N || cData.length === 1) && cDims.every((d, i) => i === cDims.length - 1 || d === 1)) {
      bias = addConstant(g, `${c.name}_bias`, DataType.FLOAT, [N], Float32Array.from({ length: N }, (_, i) => beta * cData[cData.length === 1 ? 0 : i]!));
      ctx.replaced.add(c);
    } else {
      let cv: Value = c;
      if (beta !== 1) {
        const bv = addConstant(g, `${base}_beta`, DataType.FLOAT, [], Float32Array.of(beta));
        const scaled = g.createValue(`${base}_beta_c`);
        tail.push({ opType: 'Mul', name: ctx.g.uniqueNodeName(`${base}/beta`), inputs: [c, bv], outputs: [scaled] });
        cv = scaled;
      }
      tail.push({ opType: 'Add', name: ctx.g.uniqueNodeName(`${base}/bias`), inputs: [null, cv] });
    }
  }
  const specs: Emit[] = [];
  if ((ctx.opts.form ?? 'fused') === 'fused') {
    const inputs = [a, wq, ws, wzp, bias];
    while (inputs[inputs.length - 1] === null) inputs.pop();
    // Imported only when such a node is emitted (a run that quantizes only Gathers needs no contrib ops).
    requireOpset(ctx.model, 'com.microsoft', 1, 'DynamicQuantizeMatMul');
    specs.push({ opType: 'DynamicQuantizeMatMul', domain: 'com.microsoft', name: tail.length ? ctx.g.uniqueNodeName(`${base}/quantized`) : node.name, inputs });
  } else {
    specs.push(...standardMatMul(ctx, base, a, 'MatMulInteger', wq, wzp, ws, {}));
    if (bias) tail.unshift({ opType: 'Add', name: ctx.g.uniqueNodeName(`${base}/bias`), inputs: [null, bias] });
  }
  finishRewrite(ctx, node, specs, tail);
  ctx.replaced.add(wv);
  ctx.stats.bytesBefore += data.byteLength;
  ctx.stats.bytesAfter += q.data.byteLength + scales.byteLength + (wzp ? q.zeroPoints.byteLength : 0);
  return `${(ctx.opts.form ?? 'fused') === 'fused' ? 'DynamicQuantizeMatMul' : 'MatMulInteger'} (${q.axis === undefined ? 'per-tensor' : 'per-channel'} ${ctx.scheme}, weight error ${(q.relError * 100).toFixed(2)}%)`;
}

function needsZeroPoint(q: QuantizedWeight): boolean {
  return q.zeroPoints.some((z) => z !== 0);
}

/**
 * DynamicQuantizeLinear(A) → <integerOp>(Aq, Wq, a_zp, w_zp) → Cast(float) → Mul(Mul(a_scale, w_scale)).
 * This is the pattern ORT's MatMulIntegerToFloat / DynamicQuantizeMatMul fusions recognise. `scaleShape`
 * lets Conv reshape the per-channel product to [C, 1, 1]. The final Mul's first input is left to chain.
 */
function standardMatMul(ctx: Ctx, base: string, a: Value, integerOp: 'MatMulInteger' | 'ConvInteger', wq: Value, wzp: Value | null, ws: Value, attrs: Record<string, never> | Node['attributes']): Emit[] {
  const { g } = ctx;
  const [aq, as, azp] = [g.createValue(`${a.name}_quantized`), g.createValue(`${a.name}_scale`), g.createValue(`${a.name}_zero_point`)];
  const acc = g.createValue(`${base}_int32`);
  const accF = g.createValue(`${base}_int32_float`);
  const scale = g.createValue(`${base}_output_scale`);
  const attributes = attrs instanceof Map ? [...attrs.values()] : attrs;
  return [
    { opType: 'DynamicQuantizeLinear', name: g.uniqueNodeName(`${base}/DynamicQuantizeLinear`), inputs: [a], outputs: [aq, as, azp] },
    { opType: integerOp, name: g.uniqueNodeName(`${base}/${integerOp}`), inputs: wzp ? [aq, wq, azp, wzp] : [aq, wq, azp], outputs: [acc], attributes },
    { opType: 'Cast', name: g.uniqueNodeName(`${base}/Cast`), inputs: [acc], outputs: [accF], attributes: { to: DataType.FLOAT } },
    { opType: 'Mul', name: g.uniqueNodeName(`${base}/scale`), inputs: [as, ws], outputs: [scale] },
    { opType: 'Mul', name: g.uniqueNodeName(`${base}/dequantize`), inputs: [accF, scale] },
  ];
}

/**
 * Replaces `node` by `specs` followed by `tail`, keeping the node's name on the last one. Entries without
 * explicit outputs form the main chain: each gets a fresh output, and a null first input reads the
 * previous main-chain output (the bias Add reads the product). The last entry ends in the node's output.
 */
function finishRewrite(ctx: Ctx, node: Node, specs: Emit[], tail: Emit[]): void {
  const all = [...specs, ...tail];
  let prev: Value | undefined;
  const chained = all.map((s, i): Emit => {
    const inputs = [...(s.inputs ?? [])];
    if (inputs[0] === null) {
      if (!prev) throw new FrugalError('E_INTERNAL', `${s.opType} has no value to chain from`);
      inputs[0] = prev;
    }
    if (i === all.length - 1) return { ...s, inputs, name: node.name, outputs: undefined };
    if (s.outputs) return { ...s, inputs };
    const out = ctx.g.createValue(`${s.name ?? s.opType}_out`);
    prev = out;
    return { ...s, inputs, outputs: [out] };
  });
  replaceNode(ctx.g, node, chained);
}

/** What the Conv rule found: the weight, and for ConvInteger the input X and the bias data. */
type ConvMatch = WeightMatch & ({ mode: 'weight-only' } | { mode: 'integer'; x: Value; b: Value | null | undefined; bData: Float32Array | undefined });

/** Conv with a constant weight → weight-only int8 or ConvInteger, as `opts.conv` says (default: left float). */
const convRule: RewriteRule<Ctx, ConvMatch> = {
  ops: ['Conv'],
  check(node, ctx) {
    const mode = ctx.opts.conv ?? 'float';
    if (mode === 'float') return skip('disabled', 'Conv left float (dynamic int8 Conv is slower in ORT; int8-static quantizes CNNs)');
    if (mode === 'integer' && ctx.model.opset < 11) return skip('opset', `ConvInteger needs DynamicQuantizeLinear (opset 11); the model imports opset ${ctx.model.opset}`);
    if (ctx.model.opset < 10) return skip('opset', `int8 Conv weights need DequantizeLinear (opset 10); the model imports opset ${ctx.model.opset}`);
    const wv = node.inputs[1]!;
    if (mode === 'weight-only') {
      const data = weightOf(ctx, node, 1);
      return data instanceof Skip ? data : { mode, wv, data, dims: wv.initializer!.dims };
    }
    const x = node.inputs[0];
    if (!x || x.initializer) return skip('constant-input', 'input X is a constant');
    if (!activationIsFloat(x)) return skip('not-float', 'input X is not float32');
    const data = weightOf(ctx, node, 1);
    if (data instanceof Skip) return data;
    const b = node.inputs[2];
    const bData = b ? floatConstant(b) : undefined;
    if (b && !bData) return skip('not-constant', 'bias is not a float32 constant');
    return { mode, wv, data, dims: wv.initializer!.dims, x, b, bData };
  },
  rewrite: (node, m, ctx) => (m.mode === 'weight-only' ? weightOnlyConv(ctx, node, m) : integerConv(ctx, node, m)),
};

/** DynamicQuantizeLinear → ConvInteger → Cast → Mul (→ Add bias). */
function integerConv(ctx: Ctx, node: Node, { wv, data, dims, x, b, bData }: Extract<ConvMatch, { mode: 'integer' }>): string {
  const { g } = ctx;
  const C = dims[0]!;
  // ORT's CPU ConvInteger accepts uint8 weights with a single zero point; u8 × u8 does not saturate on
  // any CPU. Per channel, the weights are symmetric so every channel shares zero point 128.
  const perChannel = ctx.opts.perChannel === true;
  const q = quantizeWeight(data, dims, { scheme: 'u8', axis: perChannel ? 0 : undefined, symmetric: perChannel });
  const chanShape = q.axis === undefined ? [] : [C, ...dims.slice(2).map(() => 1)];
  const wq = addConstant(g, `${wv.name}_quantized`, q.dtype, dims, q.data);
  const ws = addConstant(g, `${wv.name}_scale`, DataType.FLOAT, chanShape, q.scales);
  const wzp = addConstant(g, `${wv.name}_zero_point`, q.dtype, [], q.zeroPoints.subarray(0, 1));
  const base = node.name || `Conv_${wv.name}`;
  const specs = standardMatMul(ctx, base, x, 'ConvInteger', wq, wzp, ws, node.attributes);
  const tail: Emit[] = [];
  if (b && bData) {
    const bias = addConstant(g, `${b.name}_bias`, DataType.FLOAT, [C, ...dims.slice(2).map(() => 1)], bData);
    tail.push({ opType: 'Add', name: ctx.g.uniqueNodeName(`${base}/bias`), inputs: [null, bias] });
    ctx.replaced.add(b);
  }
  finishRewrite(ctx, node, specs, tail);
  ctx.replaced.add(wv);
  ctx.stats.bytesBefore += data.byteLength;
  ctx.stats.bytesAfter += q.data.byteLength + q.scales.byteLength + 1;
  return `ConvInteger (${q.axis === undefined ? 'per-tensor' : 'per-channel'} u8, weight error ${(q.relError * 100).toFixed(2)}%)`;
}

/** Conv weights stored as int8 and dequantized in the graph; the convolution itself stays float. */
function weightOnlyConv(ctx: Ctx, node: Node, { wv, data, dims }: WeightMatch): string {
  const { g } = ctx;
  // DequantizeLinear's axis attribute (per channel) needs opset 13.
  const perChannel = ctx.opts.perChannel === true && ctx.model.opset >= 13;
  // No integer products: full-range int8 is always safe.
  const q = quantizeWeight(data, dims, { scheme: 's8', axis: perChannel ? 0 : undefined });
  const C = dims[0]!;
  const wq = addConstant(g, `${wv.name}_quantized`, q.dtype, dims, q.data);
  const ws = addConstant(g, `${wv.name}_scale`, DataType.FLOAT, perChannel ? [C] : [], q.scales);
  const wzp = addConstant(g, `${wv.name}_zero_point`, q.dtype, perChannel ? [C] : [], q.zeroPoints);
  const deq = g.createValue(`${wv.name}_dequantized`);
  emitBefore(g, node, [{ opType: 'DequantizeLinear', name: ctx.g.uniqueNodeName(`${node.name || wv.name}/weight/DequantizeLinear`), inputs: [wq, ws, wzp], outputs: [deq], attributes: perChannel ? { axis: 0 } : {} }]);
  node.setInput(1, deq);
  ctx.replaced.add(wv);
  ctx.stats.bytesBefore += data.byteLength;
  ctx.stats.bytesAfter += q.data.byteLength + q.scales.byteLength + q.zeroPoints.byteLength;
  return `weight-only int8 + DequantizeLinear (${perChannel ? 'per-channel' : 'per-tensor'}, float arithmetic, weight error ${(q.relError * 100).toFixed(2)}%)`;
}

/** Gather from a constant table (embeddings) → Gather(int8 table) → DequantizeLinear. */
const gatherRule: RewriteRule<Ctx, WeightMatch> = {
  ops: ['Gather'],
  check(node, ctx) {
    if (ctx.opts.gather === false) return skip('disabled', 'Gather left float (gather: false)');
    if (ctx.model.opset < 10) return skip('opset', `an int8 table needs DequantizeLinear (opset 10); the model imports opset ${ctx.model.opset}`);
    const data = weightOf(ctx, node, 0);
    if (data instanceof Skip) return skip(data.code, data.detail.replace('input 0 (weight)', 'table'));
    const wv = node.inputs[0]!;
    return { wv, data, dims: wv.initializer!.dims };
  },
  rewrite: (node, m, ctx) => quantizeGather(ctx, node, m),
};

function quantizeGather(ctx: Ctx, node: Node, { wv: tv, data, dims }: WeightMatch): string {
  const { g } = ctx;
  const axis = node.attrInt('axis', 0);
  // Per column: scales along the table's last axis, which stays the output's last axis when gathering
  // along axis 0. DequantizeLinear's axis attribute needs opset 13.
  const perColumn = ctx.opts.perChannel === true && dims.length === 2 && (axis === 0 || axis === -2) && ctx.model.opset >= 13;
  // No integer products here: the table is only dequantized, so full-range int8 is always safe.
  const q = quantizeWeight(data, dims, { scheme: 's8', axis: perColumn ? 1 : undefined });
  const tq = addConstant(g, `${tv.name}_quantized`, q.dtype, dims, q.data);
  const ts = addConstant(g, `${tv.name}_scale`, DataType.FLOAT, perColumn ? [dims[1]!] : [], q.scales);
  const tzp = addConstant(g, `${tv.name}_zero_point`, q.dtype, perColumn ? [dims[1]!] : [], q.zeroPoints);
  const base = node.name || `Gather_${tv.name}`;
  const gathered = g.createValue(`${base}_quantized`);
  const specs: Emit[] = [
    { opType: 'Gather', name: ctx.g.uniqueNodeName(`${base}/quantized`), inputs: [tq, node.inputs[1]!], outputs: [gathered], attributes: [...node.attributes.values()] },
    { opType: 'DequantizeLinear', name: node.name, inputs: [gathered, ts, tzp], attributes: perColumn ? { axis: -1 } : {} },
  ];
  replaceNode(g, node, specs);
  ctx.replaced.add(tv);
  ctx.stats.bytesBefore += data.byteLength;
  ctx.stats.bytesAfter += q.data.byteLength + q.scales.byteLength + q.zeroPoints.byteLength;
  return `Gather + DequantizeLinear (${perColumn ? 'per-column' : 'per-tensor'} s8, weight error ${(q.relError * 100).toFixed(2)}%)`;
}

/** The dynamic pass's rules, one per op family. */
const INT8_DYNAMIC_RULES: ReadonlyArray<AnyRewriteRule<Ctx>> = Object.freeze([matMulRule, convRule, gatherRule]);
