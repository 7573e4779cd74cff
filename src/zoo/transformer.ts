/**
 * A BERT-style transformer encoder for sequence classification, written with standard ONNX ops only
 * (opset 17), so every Frugal pass and ONNX Runtime's CPU kernels see plain MatMul/Softmax/
 * LayerNormalization patterns, the way exported Hugging Face models look before fusion.
 *
 *   input_ids, attention_mask: int64 [batch, seq]
 *   x = LayerNorm(Gather(word_embeddings, input_ids) + position_embeddings[0:seq])
 *   per layer (post-norm, as BERT; or pre-norm):
 *     x = LN(x + O(softmax(Q·Kᵀ/√d + (1 - mask)·-1e4)·V))      multi-head, heads split by Reshape
 *       (or linear / window / block attention over the same Q, K, V: `attention`)
 *     x = LN(x + W2·gelu(W1·x))                                  gelu = 0.5·x·(1 + erf(x/√2))
 *   pooled = tanh(Wp · masked_mean(x))
 *   logits = Wc · pooled + bc                                    [batch, classes]
 *
 * Weights use the MatMul layout [in, out] and names like `encoder.layer.3.attention.query.weight`;
 * nodes are named like `layer3.attn.q_proj`. Heads are split with Reshape shape [0, 0, -1, headDim], so
 * removing heads needs only the projection weights to shrink.
 */
import { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { float, type Value } from '../ir/node.js';
import { FrugalError } from '../errors.js';
import { type AttentionForm, attentionPrefix, buildAttention, checkAttentionOptions } from '../passes/attention/forms.js';
import { filledWeight, normalWeight } from './init.js';

export interface TransformerConfig {
  vocabSize: number;
  /** Rows of the learned position table: the longest sequence the model accepts. */
  maxLength: number;
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
  classes: number;
  /** LayerNorm after each residual (BERT, default) or before each sublayer with a final LayerNorm. */
  norm: 'post' | 'pre';
  /** Std of the normal weight init (BERT: 0.02). */
  initStd: number;
  layerNormEpsilon: number;
  seed: number;
  /**
   * Attention form of every layer (default softmax). Efficient forms (see passes/attention/forms.ts)
   * keep the same Q/K/V/O weights, so a model can be trained with one form and converted to another.
   */
  attention: AttentionForm;
  /** window: band radius; block: block size (ignored by softmax and linear). */
  attentionWindow: number;
  /** block: leading tokens that attend to, and are attended by, every token. */
  attentionGlobal: number;
}

export const TRANSFORMER_TINY_DEFAULTS: Readonly<TransformerConfig> = Object.freeze({
  vocabSize: 8192,
  maxLength: 512,
  hidden: 64,
  layers: 2,
  heads: 4,
  ffn: 128,
  classes: 2,
  norm: 'post',
  initStd: 0.02,
  layerNormEpsilon: 1e-12,
  seed: 0,
  attention: 'softmax',
  attentionWindow: 64,
  attentionGlobal: 2,
});

export const BERT_BASE_DEFAULTS: Readonly<TransformerConfig> = Object.freeze({
  ...TRANSFORMER_TINY_DEFAULTS,
  vocabSize: 30522,
  maxLength: 512,
  hidden: 768,
  layers: 12,
  heads: 12,
  ffn: 3072,
  classes: 2,
});

/** Parameter count of a configuration, computed without building it (matches the built initializers' weights). */
export function transformerParameterCount(c: TransformerConfig): number {
  const h = c.hidden;
  const embeddings = c.vocabSize * h + c.maxLength * h + 2 * h;
  const attention = 4 * (h * h + h) + 2 * h;
  const ffn = h * c.ffn + c.ffn + c.ffn * h + h + 2 * h;
  const finalNorm = c.norm === 'pre' ? 2 * h : 0;
  const head = h * h + h + h * c.classes + c.classes;
  return embeddings + c.layers * (attention + ffn) + finalNorm + head;
}

function checkConfig(c: TransformerConfig): void {
  for (const k of ['vocabSize', 'maxLength', 'hidden', 'layers', 'heads', 'ffn', 'classes'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new FrugalError('E_USAGE', `transformer: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.hidden % c.heads !== 0) throw new FrugalError('E_USAGE', `transformer: hidden (${c.hidden}) must be divisible by heads (${c.heads})`);
  checkAttentionOptions({ form: c.attention, headDim: c.hidden / c.heads, window: c.attentionWindow, globalTokens: c.attentionGlobal, prefix: '' });
  if ((c.attention === 'window' || c.attention === 'block') && c.attentionWindow > c.maxLength) {
    throw new FrugalError('E_USAGE', `transformer: attentionWindow (${c.attentionWindow}) is larger than the longest sequence (maxLength ${c.maxLength}); choose a window ≤ ${c.maxLength}`);
  }
  if (c.norm !== 'post' && c.norm !== 'pre') throw new FrugalError('E_USAGE', `transformer: norm must be 'post' or 'pre', got '${c.norm}'`);
}

/** Builds the encoder classifier; see the module comment for the graph. */
export function buildTransformerEncoder(config: Partial<TransformerConfig> = {}): Model {
  const c: TransformerConfig = { ...TRANSFORMER_TINY_DEFAULTS, ...config };
  checkConfig(c);
  const H = c.hidden;
  const d = H / c.heads;
  const b = new GraphBuilder('transformer_encoder');
  const w = (name: string, dims: number[]): Value => normalWeight(b, name, dims, c.initStd, c.seed);
  const zeros = (name: string, dims: number[]): Value => filledWeight(b, name, dims, 0);
  const ones = (name: string, dims: number[]): Value => filledWeight(b, name, dims, 1);
  const i64 = (name: string, values: number[]): Value => b.constant(name, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt)));
  const f32 = (name: string, value: number): Value => b.constant(name, DataType.FLOAT, [], new Float32Array([value]));
  const op = (type: string, inputs: Value[], name: string, attrs?: Parameters<GraphBuilder['op']>[2]): Value => b.op(type, inputs, attrs, { name });

  const layerNorm = (x: Value, prefix: string, nodeName: string): Value =>
    op('LayerNormalization', [x, ones(`${prefix}.weight`, [H]), zeros(`${prefix}.bias`, [H])], nodeName, { axis: -1, epsilon: float(c.layerNormEpsilon) });
  const linear = (x: Value, prefix: string, nodeName: string, fin: number, fout: number): Value => {
    const y = op('MatMul', [x, w(`${prefix}.weight`, [fin, fout])], nodeName);
    return op('Add', [y, zeros(`${prefix}.bias`, [fout])], `${nodeName}.bias`);
  };

  const inputIds = b.input('input_ids', DataType.INT64, ['batch', 'seq']);
  const attentionMask = b.input('attention_mask', DataType.INT64, ['batch', 'seq']);

  // Constants shared by every layer.
  const one = f32('const.one', 1);
  const half = f32('const.half', 0.5);
  const invSqrt2 = f32('const.inv_sqrt2', Math.SQRT1_2);
  const scale = f32('attention.scale', 1 / Math.sqrt(d));
  const splitShape = i64('attention.split_heads_shape', [0, 0, -1, d]);
  const mergeShape = i64('attention.merge_heads_shape', [0, 0, -1]);

  // Embeddings: token lookup plus the first `seq` rows of the position table.
  const tok = op('Gather', [w('embeddings.word_embeddings.weight', [c.vocabSize, H]), inputIds], 'embeddings.word', { axis: 0 });
  const seqLen = op('Shape', [inputIds], 'embeddings.seq_len', { start: 1, end: 2 });
  const pos = op('Slice', [w('embeddings.position_embeddings.weight', [c.maxLength, H]), i64('embeddings.position_start', [0]), seqLen, i64('embeddings.position_axes', [0])], 'embeddings.position');
  let x = op('Add', [tok, pos], 'embeddings.add');
  x = layerNorm(x, 'embeddings.layer_norm', 'embeddings.layer_norm');

  // Additive mask [batch, 1, 1, seq]: 0 where attended, -1e4 where padded (exp underflows to 0).
  const maskF = op('Cast', [attentionMask], 'mask.cast', { to: DataType.FLOAT });
  const inverted = op('Sub', [one, maskF], 'mask.invert');
  const maskBias = op('Mul', [inverted, f32('mask.neg_large', -1e4)], 'mask.scale');
  const extMask = op('Unsqueeze', [maskBias, i64('mask.unsqueeze_axes', [1, 2])], 'mask.unsqueeze');

  for (let l = 0; l < c.layers; l++) {
    const p = `encoder.layer.${l}`;
    const n = `layer${l}`;
    const attnIn = c.norm === 'pre' ? layerNorm(x, `${p}.attention.layer_norm`, `${n}.attn.layer_norm`) : x;
    const heads = (proj: Value, which: string, perm: number[]): Value => {
      const r = op('Reshape', [proj, splitShape], `${n}.attn.${which}_split`);
      return op('Transpose', [r], `${n}.attn.${which}_transpose`, { perm });
    };
    const q = heads(linear(attnIn, `${p}.attention.query`, `${n}.attn.q_proj`, H, H), 'q', [0, 2, 1, 3]);
    // Softmax takes Kᵀ [B,h,d,n] straight from the transpose; the efficient forms take K [B,h,n,d].
    const kHeads = heads(linear(attnIn, `${p}.attention.key`, `${n}.attn.k_proj`, H, H), 'k', c.attention === 'softmax' ? [0, 2, 3, 1] : [0, 2, 1, 3]);
    const v = heads(linear(attnIn, `${p}.attention.value`, `${n}.attn.v_proj`, H, H), 'v', [0, 2, 1, 3]);
    let ctx: Value;
    if (c.attention === 'softmax') {
      const kT = kHeads;
      let scores = op('MatMul', [q, kT], `${n}.attn.qk`);
      scores = op('Mul', [scores, scale], `${n}.attn.scale`);
      scores = op('Add', [scores, extMask], `${n}.attn.mask`);
      const probs = op('Softmax', [scores], `${n}.attn.softmax`, { axis: -1 });
      ctx = op('MatMul', [probs, v], `${n}.attn.context`);
    } else {
      ctx = buildAttention(b, q, kHeads, v, { form: c.attention, headDim: d, window: c.attentionWindow, globalTokens: c.attentionGlobal, maskBias: extMask, prefix: attentionPrefix(`${n}.attn`, { form: c.attention, window: c.attentionWindow, globalTokens: c.attentionGlobal }) });
    }
    ctx = op('Transpose', [ctx], `${n}.attn.context_transpose`, { perm: [0, 2, 1, 3] });
    ctx = op('Reshape', [ctx, mergeShape], `${n}.attn.merge_heads`);
    const attnOut = linear(ctx, `${p}.attention.output`, `${n}.attn.out_proj`, H, H);
    x = op('Add', [x, attnOut], `${n}.attn.residual`);
    if (c.norm === 'post') x = layerNorm(x, `${p}.attention.layer_norm`, `${n}.attn.layer_norm`);

    const ffnIn = c.norm === 'pre' ? layerNorm(x, `${p}.ffn.layer_norm`, `${n}.ffn.layer_norm`) : x;
    const h1 = linear(ffnIn, `${p}.ffn.intermediate`, `${n}.ffn.fc1`, H, c.ffn);
    const erf = op('Erf', [op('Mul', [h1, invSqrt2], `${n}.ffn.gelu.scale`)], `${n}.ffn.gelu.erf`);
    const gelu = op('Mul', [op('Mul', [h1, half], `${n}.ffn.gelu.half`), op('Add', [erf, one], `${n}.ffn.gelu.add_one`)], `${n}.ffn.gelu`);
    const h2 = linear(gelu, `${p}.ffn.output`, `${n}.ffn.fc2`, c.ffn, H);
    x = op('Add', [x, h2], `${n}.ffn.residual`);
    if (c.norm === 'post') x = layerNorm(x, `${p}.ffn.layer_norm`, `${n}.ffn.layer_norm`);
  }
  if (c.norm === 'pre') x = layerNorm(x, 'encoder.final_layer_norm', 'encoder.final_layer_norm');

  // Masked mean over the sequence: padded positions contribute nothing and are not counted.
  const axes1 = i64('pool.axes', [1]);
  const mask3 = op('Unsqueeze', [maskF, i64('pool.unsqueeze_axes', [2])], 'pool.mask_unsqueeze');
  const summed = op('ReduceSum', [op('Mul', [x, mask3], 'pool.mask_mul'), axes1], 'pool.sum', { keepdims: 0 });
  const count = op('Max', [op('ReduceSum', [mask3, axes1], 'pool.count', { keepdims: 0 }), one], 'pool.count_clamp');
  let pooled = op('Div', [summed, count], 'pool.mean');
  pooled = op('Tanh', [linear(pooled, 'pooler.dense', 'pooler.dense', H, H)], 'pooler.tanh');
  const logits = linear(pooled, 'classifier', 'classifier', H, c.classes);
  b.output(logits, 'logits', DataType.FLOAT, ['batch', c.classes]);
  return b.build({ opsetImports: { '': 17 } });
}
