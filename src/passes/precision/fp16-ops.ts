/**
 * Which ops the float16/bfloat16 pass keeps in float32, as frozen tables.
 *
 * How the CPU tables were determined: a script built one single-op model per operator (about 110 ops:
 * every elementwise, activation, normalization, pooling, reduction, shape and indexing op of ONNX opsets
 * 17 to 21) with float16 (then bfloat16) inputs and outputs, and tried to create an onnxruntime-node 1.30
 * CPU session and run it (graph optimizations disabled). Findings:
 *
 * - float16: every op loaded and ran except those whose schema has no float16 at the probed opset
 *   (Celu, IsInf before opset 20, Range). The CPU provider has native float16 kernels for few ops; for
 *   the rest ORT inserts Cast nodes around the op at session creation and computes it in float32
 *   (its InsertCastTransformer), so an fp16 graph runs on CPU with fp32 arithmetic and fp16 storage.
 * - bfloat16: nearly nothing ran: "Could not find an implementation" for Add, Mul, MatMul, Gemm,
 *   Softmax, Relu, the reductions, BatchNormalization... and schema errors for Conv, pooling and most
 *   activations. ORT's CPU Cast fallback covers float16 only. So on CPU a bfloat16 conversion can only
 *   store weights in bfloat16 and compute in float32.
 */
import type { Node } from '../../ir/node.js';

/** Ops whose float16 form onnxruntime-node 1.30's CPU provider refuses (probed; see above). */
export const CPU_FP16_UNSUPPORTED: ReadonlySet<string> = Object.freeze(new Set(['Celu', 'IsInf', 'Range']));

/**
 * Ops kept in float32 whatever the provider, because their results leave float16's range (±65504) or
 * lose all precision on ordinary inputs: exponentials and powers overflow past e^11 or 256², sums and
 * products over long axes (a ReduceSum over 512 tokens, a CumSum) overflow or drown small terms.
 */
export const FP16_OVERFLOW_PRONE: ReadonlySet<string> = Object.freeze(
  new Set(['Exp', 'Pow', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2', 'ReduceProd', 'ReduceLogSumExp', 'CumSum']),
);

/**
 * Ops for which clipping a constant operand to ±65504 is exact: the constant only bounds or compares,
 * and every float16 value already lies within ±65504 (Min(x, 1e6) = Min(x, 65504) for float16 x). Any
 * other op reading a constant beyond float16's range stays float32: clipping would change its result
 * (measured: PP-OCRv4 det's BatchNormalization with running variance up to 9.8e7, clipped, cosine 0.82).
 */
export const FP16_CLIP_EXACT: ReadonlySet<string> = Object.freeze(new Set(['Min', 'Max', 'Clip']));

/**
 * Ops that create float tensors from a `dtype` attribute or random state; converting them would mean
 * rewriting the attribute and the distribution's precision, so they stay float32 (a Cast follows).
 */
export const FP16_DTYPE_OPS: ReadonlySet<string> = Object.freeze(
  new Set(['RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'EyeLike', 'Bernoulli', 'Multinomial', 'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear']),
);

/**
 * com.microsoft ops converted to float16 like default-domain ones (every float input and output becomes
 * float16): their CPU kernels take float16 for the float type parameter (probed on onnxruntime-node 1.30:
 * MatMulNBits with float16 A, scales and bias; GatherBlockQuantized with float16 scales). This is what
 * makes `q4f16` (int4 weights, float16 activations) possible. Other contrib ops stay float32.
 */
export const FP16_CONTRIB_OPS: ReadonlySet<string> = Object.freeze(new Set(['MatMulNBits', 'GatherBlockQuantized']));

/** Inputs that the ONNX schema types as float32 whatever the op's data type (e.g. Resize `scales`). */
export const FLOAT32_ONLY_INPUTS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  Resize: [2],
  Upsample: [1],
});

/** True where the ONNX schema types input `index` of `n` as float32 whatever the op's data type. */
export function float32Only(n: Node, index: number): boolean {
  return FLOAT32_ONLY_INPUTS[n.opType]?.includes(index) ?? false;
}

/** The largest finite float16. */
export const FP16_MAX = 65504;

/** The block list for a target: provider refusals (CPU only) plus the overflow-prone and dtype ops. */
export function blockedOps(to: 'float16' | 'bfloat16', provider: 'cpu' | 'any'): { reason(op: string): string | undefined } {
  const reason = (op: string): string | undefined => {
    if (FP16_DTYPE_OPS.has(op)) return 'creates float tensors from a dtype attribute or quantizes: kept in float32';
    if (provider === 'cpu' && to === 'bfloat16') return 'the CPU provider has no bfloat16 kernel for it (onnxruntime-node 1.30)';
    if (provider === 'cpu' && CPU_FP16_UNSUPPORTED.has(op)) return 'the CPU provider rejects its float16 form (onnxruntime-node 1.30)';
    if (FP16_OVERFLOW_PRONE.has(op)) return `overflow-prone in ${to === 'float16' ? 'float16 (max 65504)' : 'bfloat16 (8-bit mantissa)'}`;
    return undefined;
  };
  return { reason };
}
