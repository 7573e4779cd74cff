/**
 * Attention forms as ONNX graphs: the softmax reference and three efficient forms whose time and
 * memory grow linearly with the sequence length n, each built from standard ops (opset 17) that ONNX
 * Runtime's CPU kernels run and that the training engine differentiates.
 *
 * Every form maps Q, K, V of layout [batch, heads, n, headDim] to a context of the same layout, with an
 * optional additive key mask `maskBias` broadcastable to [batch, 1, 1, n] (0 where attended, a large
 * negative number where padded: the layout BERT-style exporters and the zoo encoder produce).
 *
 * - softmax: softmax(Q·Kᵀ·scale + mask)·V; the n×n score matrix is materialized (the reference).
 * - linear (Katharopoulos et al. 2020): φ(x) = elu(x) + 1,
 *     non-causal: out_i = φ(q_i)·(Σ_j φ(k_j)ᵀv_j) / (φ(q_i)·Σ_j φ(k_j)),  O(n·d²);
 *     causal: the same sums taken as prefix sums (CumSum over j ≤ i), O(n·d²) time and memory.
 *   Padded keys are removed by multiplying φ(K) by exp(mask) (exp of 0 is 1; of −10⁴ underflows to 0).
 *   `scale` does not apply: φ(Q)·φ(K)ᵀ has no temperature.
 * - performer (Choromanski et al. 2021, FAVOR+ positive random features): the same linear machinery
 *   with φ(x) = exp(Wᵀx' − ‖x'‖²/2)/√m, x' = x·√scale and W [d, m] seeded N(0, 1), so that
 *   E[φ(q)·φ(k)] = exp(q·k·scale): an unbiased estimate of softmax attention's kernel, which the
 *   converted model inherits without retraining (error shrinks as 1/√m).
 * - window (local band, Longformer-style): query i attends to keys j with |i − j| ≤ w (causal:
 *   i − w ≤ j ≤ i). The sequence is cut into blocks of w tokens; each query block scores only its own
 *   block and its two neighbours (3w keys), so the scores are [n, 3w], never [n, n].
 * - block (block-sparse, BigBird-style without the random part): blocks of `window` tokens attend to
 *   their own and neighbouring blocks, and the first `globalTokens` tokens attend to, and are attended
 *   by, every token. Scores are [n, 3w + g] plus [g, n].
 *
 * The blocked forms pad the sequence to a whole number of blocks with masked keys (bias −10⁹) and cut
 * the padding off the result, so n need not be a multiple of the window and may be symbolic.
 */
import type { GraphBuilder } from '../../ir/builder.js';
import { DataType } from '../../ir/dtype.js';
import type { Value } from '../../ir/node.js';
import { FrugalError } from '../../errors.js';
import { createRng } from '../../util/rng.js';

/** The attention forms Frugal builds and converts to. */
export const ATTENTION_FORMS = ['softmax', 'linear', 'performer', 'window', 'block'] as const;
export type AttentionForm = (typeof ATTENTION_FORMS)[number];

export interface AttentionOptions {
  form: AttentionForm;
  /** Size of each head (the last dim of Q, K, V); needed to cut blocks. */
  headDim: number;
  /** Queries see only keys at or before their own position. Not supported by 'block'. */
  causal?: boolean;
  /** window: the band radius w (keys within distance w); block: the block size. Default 64. */
  window?: number;
  /** block: how many leading tokens are global (attend to all, attended by all). Default 2. */
  globalTokens?: number;
  /** Score scale for softmax, window and block (default 1/√headDim). */
  scale?: number;
  /** Additive key mask broadcastable to [batch, 1, 1, n], or null. */
  maskBias?: Value | null;
  /** FLOAT (default) or DOUBLE (gradient checks). */
  elemType?: number;
  /** Prefix of node and constant names (unique per layer). */
  prefix: string;
  /** performer: number of random features m (default 64). */
  randomFeatures?: number;
  /** performer: seed of the random projection (default 0). */
  seed?: number;
  /** Denominator guard of linear attention (default 1e-6). */
  eps?: number;
  /**
   * Default-domain opset of the model the nodes go into (default 17; at least 11). Below 13, axes are
   * attributes of Unsqueeze/Squeeze/ReduceSum, as older exporters (BERT at opset 12) wrote them.
   */
  opset?: number;
}

/**
 * The name prefix of one layer's attention nodes, which records the form so that `frugal inspect` can
 * name it later: `<base>.linear_attention`, `<base>.window_w64_causal_attention`,
 * `<base>.block_b64_g2_attention`.
 */
export function attentionPrefix(base: string, opts: Pick<AttentionOptions, 'form' | 'causal' | 'window' | 'globalTokens' | 'randomFeatures'>): string {
  const param = opts.form === 'window' ? `_w${opts.window ?? 64}` : opts.form === 'block' ? `_b${opts.window ?? 64}_g${opts.globalTokens ?? 2}` : opts.form === 'performer' ? `_m${opts.randomFeatures ?? 64}` : '';
  return `${base}.${opts.form}${param}${opts.causal ? '_causal' : ''}_attention`;
}

const PREFIX_PATTERN = /^(.*)\.(softmax|linear|performer|window|block)(?:_w(\d+))?(?:_b(\d+)_g(\d+))?(?:_m(\d+))?(_causal)?_attention\./;

/** The layer and form recorded in a node name written under `attentionPrefix`, or undefined. */
export function parseAttentionPrefix(nodeName: string): { layer: string; form: AttentionForm; causal: boolean; window?: number; globalTokens?: number; randomFeatures?: number } | undefined {
  const m = PREFIX_PATTERN.exec(nodeName);
  if (!m) return undefined;
  const window = m[3] ?? m[4];
  return { layer: m[1]!, form: m[2] as AttentionForm, causal: Boolean(m[7]), ...(window ? { window: Number(window) } : {}), ...(m[5] ? { globalTokens: Number(m[5]) } : {}), ...(m[6] ? { randomFeatures: Number(m[6]) } : {}) };
}

/** Bias given to structurally excluded keys (outside the band, padding blocks). */
const EXCLUDED = -1e9;

/** Small helper that names nodes `${prefix}.${name}` and makes typed constants. */
class Ops {
  private count = 0;
  constructor(
    readonly b: GraphBuilder,
    readonly prefix: string,
    readonly et: number,
    readonly opset: number,
  ) {}
  /** Unsqueeze, Squeeze or ReduceSum with its axes where this opset wants them (input from 13). */
  axesOp(type: 'Unsqueeze' | 'Squeeze' | 'ReduceSum', x: Value, axes: number[], attrs: Record<string, number> = {}): Value {
    return this.opset >= 13 ? this.op(type, [x, this.ints(axes)], attrs) : this.op(type, [x], { ...attrs, axes });
  }
  op(type: string, inputs: Array<Value | null>, attrs?: Parameters<GraphBuilder['op']>[2]): Value {
    return this.b.op(type, inputs, attrs, { name: this.b.graph.uniqueNodeName(`${this.prefix}.${type.toLowerCase()}_${this.count++}`) });
  }
  ints(values: number[]): Value {
    return this.b.constant(this.b.graph.uniqueName(`${this.prefix}.i64`), DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt)));
  }
  scalar(v: number): Value {
    const data = this.et === DataType.DOUBLE ? new Float64Array([v]) : new Float32Array([v]);
    return this.b.constant(this.b.graph.uniqueName(`${this.prefix}.c`), this.et, [], data);
  }
  tensor(dims: number[], values: number[]): Value {
    const data = this.et === DataType.DOUBLE ? Float64Array.from(values) : Float32Array.from(values);
    return this.b.constant(this.b.graph.uniqueName(`${this.prefix}.c`), this.et, dims, data);
  }
}

/** Checks the options that do not depend on the sequence length; throws E_USAGE naming the option. */
export function checkAttentionOptions(opts: AttentionOptions): void {
  if (!(ATTENTION_FORMS as readonly string[]).includes(opts.form)) throw new FrugalError('E_USAGE', `attention form must be one of ${ATTENTION_FORMS.join(', ')}; got '${opts.form}'`);
  if (!Number.isInteger(opts.headDim) || opts.headDim < 1) throw new FrugalError('E_USAGE', `attention headDim must be a positive integer, got ${opts.headDim}`);
  const w = opts.window ?? 64;
  if ((opts.form === 'window' || opts.form === 'block') && (!Number.isInteger(w) || w <= 0)) {
    throw new FrugalError('E_USAGE', `attention window must be a positive integer, got ${w} (use e.g. --window 64)`);
  }
  const m = opts.randomFeatures ?? 64;
  if (opts.form === 'performer' && (!Number.isInteger(m) || m < 1)) throw new FrugalError('E_USAGE', `performer randomFeatures must be a positive integer, got ${m}`);
  const g = opts.globalTokens ?? 2;
  if (opts.form === 'block' && (!Number.isInteger(g) || g < 0)) throw new FrugalError('E_USAGE', `attention globalTokens must be a non-negative integer, got ${g}`);
  if ((opts.opset ?? 17) < 11) throw new FrugalError('E_UNSUPPORTED', `efficient attention needs opset 11 or later (Pad with a fill value, CumSum); the model imports opset ${opts.opset}`);
  if (opts.form === 'softmax' && opts.causal && (opts.opset ?? 17) < 14) throw new FrugalError('E_UNSUPPORTED', `causal softmax attention needs opset 14 (Trilu); the model imports opset ${opts.opset}`);
  if (opts.form === 'block' && opts.causal) throw new FrugalError('E_USAGE', `block-sparse attention is bidirectional (global tokens see the future); use 'window' or 'linear' for causal attention`);
}

/** Builds one attention block; returns the context [batch, heads, n, headDim]. */
export function buildAttention(b: GraphBuilder, q: Value, k: Value, v: Value, opts: AttentionOptions): Value {
  checkAttentionOptions(opts);
  const o = new Ops(b, opts.prefix, opts.elemType ?? DataType.FLOAT, opts.opset ?? 17);
  const scale = opts.scale ?? 1 / Math.sqrt(opts.headDim);
  const mask = opts.maskBias ?? null;
  switch (opts.form) {
    case 'softmax':
      return softmaxAttention(o, q, k, v, scale, mask, opts.causal ?? false);
    case 'linear':
      return linearAttention(o, q, k, v, mask, opts.causal ?? false, opts.eps ?? 1e-6, (x) => featureMap(o, x));
    case 'performer': {
      const w = performerProjection(opts.headDim, opts.randomFeatures ?? 64, opts.seed ?? 0);
      const proj = o.tensor([opts.headDim, w.length / opts.headDim], Array.from(w));
      return linearAttention(o, q, k, v, mask, opts.causal ?? false, opts.eps ?? 1e-6, (x) => favorFeatures(o, x, proj, scale, w.length / opts.headDim));
    }
    case 'window':
      return blockedAttention(o, q, k, v, scale, mask, { kind: 'window', size: opts.window ?? 64, causal: opts.causal ?? false, headDim: opts.headDim, globals: 0 });
    case 'block':
      return blockedAttention(o, q, k, v, scale, mask, { kind: 'block', size: opts.window ?? 64, causal: false, headDim: opts.headDim, globals: opts.globalTokens ?? 2 });
  }
}

/** [n] as a 1-element int64 tensor: the sequence length of a [B, h, n, d] value. */
function seqLen(o: Ops, x: Value): Value {
  return o.opset >= 15 ? o.op('Shape', [x], { start: 2, end: 3 }) : o.op('Slice', [o.op('Shape', [x]), o.ints([2]), o.ints([3]), o.ints([0])]);
}

function softmaxAttention(o: Ops, q: Value, k: Value, v: Value, scale: number, mask: Value | null, causal: boolean): Value {
  let s = o.op('Mul', [o.op('MatMul', [q, o.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), o.scalar(scale)]);
  if (mask) s = o.op('Add', [s, mask]);
  if (causal) {
    // Lower-triangular [n, n] of ones → bias 0 on and below the diagonal, −10⁹ above.
    const n = seqLen(o, q);
    // Built in int64 so the training engine sees no float path from Q into the mask.
    const ones = o.op('Expand', [o.ints([1]), o.op('Concat', [n, n], { axis: 0 })]);
    const lower = o.op('Cast', [o.op('Trilu', [ones], { upper: 0 })], { to: o.et });
    s = o.op('Add', [s, o.op('Mul', [o.op('Sub', [o.scalar(1), lower]), o.scalar(EXCLUDED)])]);
  }
  return o.op('MatMul', [o.op('Softmax', [s], { axis: -1 }), v]);
}

/**
 * φ(x) = elu(x) + 1 = relu(x) + exp(min(x, 0)): positive, so the normalizer φ(q)·Σφ(k) is never zero.
 * Written without Elu because ORT's CPU Elu kernel is float32-only and gradient checks run in float64.
 */
function featureMap(o: Ops, x: Value): Value {
  return o.op('Add', [o.op('Relu', [x]), o.op('Exp', [o.op('Min', [x, o.scalar(0)])])]);
}

/** The performer's random projection W [d, m], row-major, seeded N(0, 1) entries. */
export function performerProjection(headDim: number, features: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: headDim * features }, () => rng.normal());
}

/** FAVOR+ positive features: exp(x'·W − ‖x'‖²/2) / √m with x' = x·√scale. */
function favorFeatures(o: Ops, x: Value, w: Value, scale: number, m: number): Value {
  const xs = o.op('Mul', [x, o.scalar(Math.sqrt(scale))]);
  const half = o.op('Mul', [o.axesOp('ReduceSum', o.op('Mul', [xs, xs]), [3], { keepdims: 1 }), o.scalar(0.5)]);
  return o.op('Mul', [o.op('Exp', [o.op('Sub', [o.op('MatMul', [xs, w]), half])]), o.scalar(1 / Math.sqrt(m))]);
}

function linearAttention(o: Ops, q: Value, k: Value, v: Value, mask: Value | null, causal: boolean, eps: number, phi: (x: Value) => Value): Value {
  const fq = phi(q);
  let fk = phi(k);
  // Padded keys contribute nothing to either sum: φ(k_j) · exp(bias_j), bias [B,1,1,n] → [B,1,n,1].
  if (mask) fk = o.op('Mul', [fk, o.op('Transpose', [o.op('Exp', [mask])], { perm: [0, 1, 3, 2] })]);
  if (!causal) {
    const kv = o.op('MatMul', [o.op('Transpose', [fk], { perm: [0, 1, 3, 2] }), v]); // [B,h,d,d]
    const z = o.axesOp('ReduceSum', fk, [2], { keepdims: 1 }); // [B,h,1,d]
    const num = o.op('MatMul', [fq, kv]); // [B,h,n,d]
    const den = o.op('MatMul', [fq, o.op('Transpose', [z], { perm: [0, 1, 3, 2] })]); // [B,h,n,1]
    return o.op('Div', [num, o.op('Add', [den, o.scalar(eps)])]);
  }
  // Prefix sums: S_i = Σ_{j≤i} φ(k_j)ᵀ v_j  [B,h,n,m,d] and z_i = Σ_{j≤i} φ(k_j)  [B,h,n,m].
  const outer = o.op('Mul', [o.axesOp('Unsqueeze', fk, [4]), o.axesOp('Unsqueeze', v, [3])]);
  const s = o.op('CumSum', [outer, o.ints([2])]);
  const z = o.op('CumSum', [fk, o.ints([2])]);
  const num = o.axesOp('Squeeze', o.op('MatMul', [o.axesOp('Unsqueeze', fq, [3]), s]), [3]); // [B,h,n,d]
  const den = o.axesOp('ReduceSum', o.op('Mul', [fq, z]), [3], { keepdims: 1 }); // [B,h,n,1]
  return o.op('Div', [num, o.op('Add', [den, o.scalar(eps)])]);
}

interface BlockPlan {
  kind: 'window' | 'block';
  size: number;
  causal: boolean;
  headDim: number;
  globals: number;
}

/**
 * The structural bias of one query block against its key windows [prev | cur | next] (or
 * [prev | cur] when causal): 0 where allowed, −10⁹ elsewhere. Row r is the query's offset in its block,
 * column c the key's offset from the start of the previous block.
 */
function bandBias(plan: BlockPlan): { dims: number[]; values: number[] } {
  const bs = plan.size;
  const cols = plan.causal ? 2 * bs : 3 * bs;
  const values: number[] = [];
  for (let r = 0; r < bs; r++) {
    for (let c = 0; c < cols; c++) {
      const rel = c - bs - r; // key position − query position
      const ok = plan.kind === 'block' ? true : plan.causal ? rel <= 0 && rel >= -bs : Math.abs(rel) <= bs;
      values.push(ok ? 0 : EXCLUDED);
    }
  }
  return { dims: [bs, cols], values };
}

/**
 * [B, h, n, e] → [B, h, nb, bs, e] with `front` zero blocks before and `back` after (padding value
 * `fill`), where nb = ceil(n / bs) + front + back. Pads are constants and the cut to whole blocks is
 * a Slice with a run-time end, so the training engine differentiates both.
 */
function toBlocks(o: Ops, x: Value, n: Value, bs: number, e: number, front: number, back: number, fill: number): Value {
  const padded = o.op('Pad', [x, o.ints([0, 0, front * bs, 0, 0, 0, (back + 1) * bs, 0]), o.scalar(fill)]);
  const blocks = o.op('Div', [o.op('Add', [n, o.ints([bs - 1])]), o.ints([bs])]);
  const len = o.op('Mul', [o.op('Add', [blocks, o.ints([front + back])]), o.ints([bs])]);
  const cut = o.op('Slice', [padded, o.ints([0]), len, o.ints([2])]);
  return o.op('Reshape', [cut, o.ints([0, 0, -1, bs, e])]);
}

/**
 * Block indices [nb, 3] = (i, i+1, i+2) (causal: [nb, 2]) into a padded block tensor, whose leading and
 * trailing padding blocks put query block i's neighbours at i, i+1, i+2. Integer-only: no gradient.
 */
function neighbourIndex(o: Ops, n: Value, bs: number, causal: boolean): Value {
  const blocks = o.op('Div', [o.op('Add', [n, o.ints([bs - 1])]), o.ints([bs])]);
  const range = o.op('Range', [o.b.constant(o.b.graph.uniqueName(`${o.prefix}.zero`), DataType.INT64, [], BigInt64Array.from([0n])), o.axesOp('Squeeze', blocks, [0]), o.b.constant(o.b.graph.uniqueName(`${o.prefix}.one`), DataType.INT64, [], BigInt64Array.from([1n]))]);
  const offsets = o.b.constant(o.b.graph.uniqueName(`${o.prefix}.offsets`), DataType.INT64, [1, causal ? 2 : 3], BigInt64Array.from(causal ? [0n, 1n] : [0n, 1n, 2n]));
  return o.op('Add', [o.axesOp('Unsqueeze', range, [1]), offsets]);
}

/**
 * Blocks [prev | cur | next] (or [prev | cur]) of a padded block tensor [B, h, nb+2, bs, e], as one
 * Gather of whole blocks (a single copy; Slice + Concat measured twice the time) merged on the token
 * axis: [B, h, nb, 3·bs, e].
 */
function neighbours(o: Ops, blocks: Value, index: Value, e: number): Value {
  return o.op('Reshape', [o.op('Gather', [blocks, index], { axis: 2 }), o.ints([0, 0, 0, -1, e])]);
}

function blockedAttention(o: Ops, q: Value, k: Value, v: Value, scale: number, mask: Value | null, plan: BlockPlan): Value {
  const bs = plan.size;
  const d = plan.headDim;
  const n = seqLen(o, q);
  // Key bias per position as a column [B|1, 1, n, 1]; zeros when there is no padding mask.
  const biasCol = mask
    ? o.op('Transpose', [mask], { perm: [0, 1, 3, 2] })
    : o.op('Expand', [o.scalar(0), o.op('Concat', [o.ints([1, 1]), n, o.ints([1])], { axis: 0 })]);
  // Global tokens are scored in their own column group, so their local copies are excluded.
  const localBias = plan.globals > 0
    ? o.op('Concat', [o.op('Add', [o.op('Slice', [biasCol, o.ints([0]), o.ints([plan.globals]), o.ints([2])]), o.scalar(EXCLUDED)]), o.op('Slice', [biasCol, o.ints([plan.globals]), o.ints([2 ** 62]), o.ints([2])])], { axis: 2 })
    : biasCol;

  const qb = o.op('Mul', [toBlocks(o, q, n, bs, d, 0, 0, 0), o.scalar(scale)]); // [B,h,nb,bs,d]
  const index = neighbourIndex(o, n, bs, plan.causal);
  const kw = neighbours(o, toBlocks(o, k, n, bs, d, 1, 1, 0), index, d); // [B,h,nb,3bs,d]
  const vw = neighbours(o, toBlocks(o, v, n, bs, d, 1, 1, 0), index, d);
  const bw = neighbours(o, toBlocks(o, localBias, n, bs, 1, 1, 1, EXCLUDED), index, 1); // [B,1,nb,3bs,1]
  const band = bandBias(plan);
  let scores = o.op('MatMul', [qb, o.op('Transpose', [kw], { perm: [0, 1, 2, 4, 3] })]); // [B,h,nb,bs,3bs]
  // Padding and band bias are summed once per position ([B,1,nb,bs,3bs], shared by the heads), so
  // the per-head scores take a single Add.
  const bias = o.op('Add', [o.op('Transpose', [bw], { perm: [0, 1, 2, 4, 3] }), o.tensor(band.dims, band.values)]);
  scores = o.op('Add', [scores, bias]);

  let ctx: Value;
  if (plan.globals > 0) {
    // Every query also scores the g global keys: [B,h,nb,bs,d]·[B,h,1,d,g] (broadcast over blocks).
    const g = plan.globals;
    const kg = o.op('Slice', [k, o.ints([0]), o.ints([g]), o.ints([2])]);
    const vg = o.op('Slice', [v, o.ints([0]), o.ints([g]), o.ints([2])]);
    let sg = o.op('MatMul', [qb, o.axesOp('Unsqueeze', o.op('Transpose', [kg], { perm: [0, 1, 3, 2] }), [2])]);
    if (mask) sg = o.op('Add', [sg, o.axesOp('Unsqueeze', o.op('Slice', [mask, o.ints([0]), o.ints([g]), o.ints([3])]), [2])]);
    const probs = o.op('Softmax', [o.op('Concat', [sg, scores], { axis: 4 })], { axis: -1 });
    const pg = o.op('Slice', [probs, o.ints([0]), o.ints([g]), o.ints([4])]);
    const pl = o.op('Slice', [probs, o.ints([g]), o.ints([2 ** 62]), o.ints([4])]);
    ctx = o.op('Add', [o.op('MatMul', [pl, vw]), o.op('MatMul', [pg, o.axesOp('Unsqueeze', vg, [2])])]);
  } else {
    ctx = o.op('MatMul', [o.op('Softmax', [scores], { axis: -1 }), vw]);
  }
  // [B,h,nb,bs,d] → [B,h,nb·bs,d] → the first n rows.
  const flat = o.op('Reshape', [ctx, o.ints([0, 0, -1, d])]);
  const local = o.op('Slice', [flat, o.ints([0]), n, o.ints([2])]);
  if (plan.globals === 0) return local;

  // The global queries attend to every key: [B,h,g,d]·[B,h,d,n] — linear in n.
  const qg = o.op('Slice', [q, o.ints([0]), o.ints([plan.globals]), o.ints([2])]);
  const globalCtx = softmaxAttention(o, qg, k, v, scale, mask, false);
  const rest = o.op('Slice', [local, o.ints([plan.globals]), o.ints([2 ** 62]), o.ints([2])]);
  return o.op('Concat', [globalCtx, rest], { axis: 2 });
}
