/**
 * Finds softmax attention subgraphs and replaces them with an efficient form, keeping the Q/K/V/O
 * projections (and every other weight) as they are.
 *
 * The pattern, as exporters write it per layer with heads in a batch dim ([batch, heads, n, d]):
 *
 *   scores = MatMul(Q, Kᵀ)                  Q [B,h,n,d], Kᵀ [B,h,d,n]
 *   scores = Mul(scores, c) | Div(scores, c)  optional, c a constant scalar (1/√d)
 *   scores = Add(scores, mask)               optional, mask a key padding bias [B|1, 1, 1, n]
 *   probs  = Softmax(scores, axis = last)
 *   ctx    = MatMul(probs, V)                the only consumer of probs
 *
 * Rewrites are data (pattern, check, rewrite): `matchAttention` either returns the parts or says which
 * check failed at which node, so every Softmax the pass leaves alone is listed with its reason.
 */
import { FrugalError } from '../../errors.js';
import { GraphBuilder } from '../../ir/builder.js';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import { inferShapes } from '../../ir/shape-inference.js';
import { Tensor } from '../../ir/tensor.js';
import { eliminateDeadCode, topologicalSort } from '../../ir/traversal.js';
import { shapeOf } from '../../ir/types.js';
import type { Pass, PassResult } from '../pass.js';
import { type AttentionForm, attentionPrefix, buildAttention, checkAttentionOptions, parseAttentionPrefix } from './forms.js';

/** The parts of one matched softmax attention. */
export interface AttentionMatch {
  softmax: Node;
  qk: Node;
  context: Node;
  q: Value;
  kT: Value;
  v: Value;
  mask: Value | null;
  scale: number;
  headDim: number;
  /** Static sequence length where the model declares one. */
  seqLen?: number;
  elemType: number;
}

/** A Softmax the matcher did not accept, and why. */
export interface AttentionMiss {
  node: string;
  reason: string;
}

function constScalar(v: Value | null | undefined): number | undefined {
  if (!v) return undefined;
  const t = v.initializer ?? (v.producer?.opType === 'Constant' ? v.producer.attr('value') : undefined);
  if (!(t instanceof Tensor) || t.dims.reduce((a, b) => a * b, 1) !== 1) return undefined;
  if (t.dtype !== DataType.FLOAT && t.dtype !== DataType.DOUBLE) return undefined;
  return Number((t.toArray() as Float32Array)[0]);
}

const dimsOf = (v: Value): Array<number | string | null> | undefined => shapeOf(v.type) ?? undefined;

/** Matches the pattern ending at `softmax`; shapes must have been inferred. */
export function matchAttention(softmax: Node, opset: number): AttentionMatch | AttentionMiss {
  const miss = (reason: string): AttentionMiss => ({ node: softmax.name, reason });
  const scores = softmax.inputs[0]!;
  const sd = dimsOf(scores);
  if (!sd || sd.length !== 4) return miss(`scores have ${sd ? `rank ${sd.length}` : 'an unknown shape'}; expected rank 4 [batch, heads, queries, keys]`);
  const axis = softmax.attrInt('axis', opset >= 13 ? -1 : 1)!;
  if (axis !== -1 && axis !== 3) return miss(`Softmax axis is ${axis}, not the key axis (-1)`);
  const out = softmax.outputs[0]!;
  const users = out.consumers();
  if (users.length !== 1 || users[0]!.opType !== 'MatMul' || users[0]!.inputs[0] !== out || out.isGraphOutput) {
    return miss(`the probabilities feed ${users.map((u) => `${u.opType} '${u.name}'`).join(', ') || 'a graph output'}, not one MatMul(probs, V) (attention weights used elsewhere cannot be dropped)`);
  }
  const context = users[0]!;

  let x = scores;
  let mask: Value | null = null;
  let scale = 1;
  let p = x.producer;
  if (p?.opType === 'Where') return miss(`scores pass through Where '${p.name}' (a boolean or causal mask, as GPT-2 exports it); only additive key-padding masks are supported`);
  if (p?.opType === 'Add') {
    const fromScores = (v: Value | null) => v?.producer && ['MatMul', 'Mul', 'Div'].includes(v.producer.opType);
    const [a, b] = p.inputs as Value[];
    const [s, m] = fromScores(a!) ? [a!, b!] : fromScores(b!) ? [b!, a!] : [undefined, undefined];
    if (!s || !m) return miss(`Add '${p.name}' before Softmax has no Q·Kᵀ operand`);
    const md = dimsOf(m);
    if (!md || md.length !== 4 || md[2] !== 1 || md[1] !== 1) {
      return miss(`mask '${m.name}' has shape ${JSON.stringify(md ?? 'unknown')}; only key padding masks [batch, 1, 1, keys] are supported (a per-query mask, e.g. causal, is not)`);
    }
    mask = m;
    x = s;
    p = x.producer;
  }
  if (p?.opType === 'Mul' || p?.opType === 'Div') {
    const c1 = constScalar(p.inputs[1]);
    const c0 = p.opType === 'Mul' ? constScalar(p.inputs[0]) : undefined;
    if (c1 === undefined && c0 === undefined) return miss(`${p.opType} '${p.name}' scales the scores by a value computed at run time`);
    scale = p.opType === 'Div' ? 1 / c1! : (c1 ?? c0)!;
    x = c1 !== undefined ? p.inputs[0]! : p.inputs[1]!;
    p = x.producer;
  }
  if (p?.opType !== 'MatMul') return miss(`expected MatMul(Q, Kᵀ) before Softmax, found ${p ? `${p.opType} '${p.name}'` : `input '${x.name}'`}`);
  if (x.uses.length !== 1) return miss(`the scores of MatMul '${p.name}' are also used elsewhere`);
  const [q, kT] = p.inputs as Value[];
  const qd = dimsOf(q!);
  const kd = dimsOf(kT!);
  const vd = dimsOf(context.inputs[1]!);
  if (!qd || qd.length !== 4 || !kd || kd.length !== 4 || !vd || vd.length !== 4) return miss(`Q, Kᵀ and V must be rank 4 [batch, heads, tokens, headDim]`);
  const headDim = qd[3];
  if (typeof headDim !== 'number') return miss(`the head size of Q '${q!.name}' is not static`);
  if (vd[3] !== headDim) return miss(`V '${context.inputs[1]!.name}' has head size ${vd[3]}, Q ${headDim} (the forms need equal sizes)`);
  const et = q!.type?.kind === 'tensor' ? q!.type.elemType : undefined;
  if (et !== DataType.FLOAT && et !== DataType.DOUBLE) return miss(`Q '${q!.name}' is not float32/float64`);
  const n = sd[3];
  return { softmax, qk: p, context, q: q!, kT: kT!, v: context.inputs[1]!, mask, scale, headDim, elemType: et, ...(typeof n === 'number' ? { seqLen: n } : {}) };
}

const isMatch = (r: AttentionMatch | AttentionMiss): r is AttentionMatch => 'qk' in r;

/** Every Softmax of the main graph, matched or not (infers shapes first). */
export function findAttention(model: Model): { matches: AttentionMatch[]; misses: AttentionMiss[] } {
  inferShapes(model);
  const matches: AttentionMatch[] = [];
  const misses: AttentionMiss[] = [];
  for (const node of model.graph.nodes) {
    // Softmax nodes inside an efficient form built earlier are that form's own (window, block).
    if (node.opType !== 'Softmax' || parseAttentionPrefix(node.name)) continue;
    const r = matchAttention(node, model.opset);
    if (isMatch(r)) matches.push(r);
    else misses.push(r);
  }
  return { matches, misses };
}

export interface ConvertAttentionOptions {
  form: Exclude<AttentionForm, 'softmax'>;
  /** window: band radius; block: block size (default 64). */
  window?: number;
  /** block: global tokens (default 2). */
  globalTokens?: number;
  /** performer: random features (default 64). */
  randomFeatures?: number;
}

/** One layer's attention form, as `frugal inspect` reports it. */
export interface LayerAttention {
  layer: string;
  form: AttentionForm;
  causal: boolean;
  window?: number;
  globalTokens?: number;
  randomFeatures?: number;
  /** For a Softmax the matcher does not recognize: why. */
  note?: string;
}

/** Names the attention form of each layer: converted or built forms by their node names, softmax by the matcher. */
export function describeAttention(model: Model): LayerAttention[] {
  const seen = new Map<string, LayerAttention>();
  for (const node of model.graph.nodes) {
    const parsed = parseAttentionPrefix(node.name);
    if (parsed && !seen.has(parsed.layer)) seen.set(parsed.layer, parsed);
  }
  const out = [...seen.values()];
  if (!model.graph.nodes.some((n) => n.opType === 'Softmax' && !parseAttentionPrefix(n.name))) return out;
  const { matches, misses } = findAttention(model);
  for (const m of matches) out.push({ layer: m.softmax.name, form: 'softmax', causal: false });
  for (const m of misses) out.push({ layer: m.node, form: 'softmax', causal: false, note: `not convertible: ${m.reason}` });
  return out;
}

/** The conversion as a Pass: stats list converted layers and every Softmax left alone, with the reason. */
export function convertAttentionPass(opts: ConvertAttentionOptions): Pass {
  return {
    name: `attention-${opts.form}`,
    run: (model) => convertAttention(model, opts),
  };
}

/**
 * Replaces every matched softmax attention of `model` (in place) with `opts.form`. Throws
 * E_UNSUPPORTED when the model has no Softmax at all or none matches (each one's reason listed), and
 * E_USAGE when the window is ≤ 0 or larger than a static sequence length.
 */
export function convertAttention(model: Model, opts: ConvertAttentionOptions): PassResult {
  const form = opts.form;
  checkAttentionOptions({ form, headDim: 1, window: opts.window, globalTokens: opts.globalTokens, randomFeatures: opts.randomFeatures, prefix: '' });
  if ((form as string) === 'softmax') throw new FrugalError('E_USAGE', `convert to 'linear', 'performer', 'window' or 'block' (the model's attention is already softmax)`);
  const softmaxCount = model.graph.nodes.filter((n) => n.opType === 'Softmax' && !parseAttentionPrefix(n.name)).length;
  if (softmaxCount === 0) throw new FrugalError('E_UNSUPPORTED', `model '${model.graph.name}' has no attention to convert (no Softmax node)`);
  const { matches, misses } = findAttention(model);
  if (matches.length === 0) {
    throw new FrugalError('E_UNSUPPORTED', `no softmax attention pattern found: ${misses.map((m) => `'${m.node}': ${m.reason}`).join('; ')}`);
  }
  const window = opts.window ?? 64;
  for (const m of matches) {
    if ((form === 'window' || form === 'block') && m.seqLen !== undefined && window > m.seqLen) {
      throw new FrugalError('E_USAGE', `window ${window} is larger than the sequence (${m.seqLen} tokens) at Softmax '${m.softmax.name}'; choose a window ≤ ${m.seqLen}`);
    }
  }
  const graph = model.graph;
  const b = new GraphBuilder(graph);
  const converted: Array<{ softmax: string; form: string; headDim: number; scale: number; masked: boolean }> = [];
  for (const m of matches) {
    const base = m.softmax.name.replace(/[./]?softmax[^./]*$/i, '') || m.softmax.name;
    const prefix = graph.uniqueNodeName(attentionPrefix(base, { form, window, globalTokens: opts.globalTokens, randomFeatures: opts.randomFeatures }));
    const k = b.op('Transpose', [m.kT], { perm: [0, 1, 3, 2] }, { name: `${prefix}.k` });
    const ctx = buildAttention(b, m.q, k, m.v, { form, headDim: m.headDim, window, globalTokens: opts.globalTokens, randomFeatures: opts.randomFeatures, scale: m.scale, maskBias: m.mask, elemType: m.elemType, prefix, opset: model.opset });
    m.context.outputs[0]!.replaceAllUsesWith(ctx, true);
    converted.push({ softmax: m.softmax.name, form, headDim: m.headDim, scale: m.scale, masked: m.mask !== null });
  }
  eliminateDeadCode(graph);
  topologicalSort(graph);
  inferShapes(model);
  return { model, modified: true, stats: { form, converted, unconverted: misses, softmaxNodes: softmaxCount } };
}
