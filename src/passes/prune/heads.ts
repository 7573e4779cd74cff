/**
 * Attention heads as prunable groups. Multi-head attention written with standard ops (BERT exports,
 * the zoo encoder) looks like
 *
 *   Q = Transpose(Reshape(x·Wq + bq, [0,0,h,d]), [0,2,1,3])      likewise K (perm [0,2,3,1]) and V
 *   ctx = Transpose(softmax(Q·Kᵀ·s + mask)·V, [0,2,1,3])
 *   y = Reshape(ctx, [0,0,h·d]) · Wo
 *
 * Head j is columns [j·d, (j+1)·d) of Wq, Wk, Wv (and their biases) and rows [j·d, (j+1)·d) of Wo, so
 * a head is a channel of block d in the dependency analysis' terms. The Reshape shape constants that
 * spell the head count (h, or h·d) get a per-node copy with the new count; `-1` entries need nothing.
 * Graphs that fuse Q, K and V into one MatMul, or read projections elsewhere, are reported, not pruned.
 */
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import type { ChannelGroup, Member, Slice } from './dependency.js';

/** A head group: a ChannelGroup whose channels are heads, plus the Reshape shapes to rewrite. */
export interface HeadGroup extends ChannelGroup {
  headDim: number;
  /** Values whose declared shapes lose meaning (4-D per-head tensors): their types are dropped. */
  clearTypes: Value[];
}

const only = (v: Value | null | undefined): Node | undefined => (v && v.uses.length === 1 && !v.isGraphOutput ? v.uses[0]!.node : undefined);

function constInts(v: Value | null | undefined): number[] | undefined {
  const t = v?.initializer;
  if (!t || (t.dtype !== 7 && t.dtype !== 6)) return undefined;
  return Array.from(t.toArray() as ArrayLike<number | bigint>, Number);
}

function perm(n: Node | undefined, want: number[]): boolean {
  return !!n && n.opType === 'Transpose' && (n.attrInts('perm') ?? []).join() === want.join();
}

interface Projection {
  matmul: Node;
  weight: Value;
  /** Values from the MatMul output to the Reshape input. */
  chain: Value[];
  /** Per-feature constants on the way (bias Add, scale Mul): node and input index. */
  params: Array<{ node: Node; index: number; value: Value }>;
}

/** Walks back from a split Reshape's data input through Add/Mul with constants to a MatMul with a constant weight. */
function projectionOf(v: Value): Projection | string {
  const chain: Value[] = [];
  const params: Projection['params'] = [];
  let cur: Value | undefined = v;
  for (let depth = 0; cur && depth < 4; depth++) {
    if (cur.uses.length !== 1 || cur.isGraphOutput) return `'${cur.name}' is read by more than the attention`;
    chain.push(cur);
    const p: Node | undefined = cur.producer;
    if (!p) return `'${cur.name}' does not come from a projection`;
    if (p.opType === 'MatMul' && p.inputs[1]?.initializer?.dims.length === 2) return { matmul: p, weight: p.inputs[1], chain, params };
    if ((p.opType === 'Add' || p.opType === 'Mul') && p.inputs.length === 2) {
      const ci: number = p.inputs[0]?.initializer ? 0 : p.inputs[1]?.initializer ? 1 : -1;
      if (ci < 0) return `${p.describe()} between the projection and the heads has no constant operand`;
      params.push({ node: p, index: ci, value: p.inputs[ci]! });
      cur = p.inputs[1 - ci] ?? undefined;
      continue;
    }
    return `${p.describe()} sits between the projection and the heads`;
  }
  return `no projection found above '${v.name}'`;
}

/** The split Reshape above a per-head Transpose; its shape constant must be rank 4. */
function splitOf(t: Value | null | undefined): { reshape: Node; shape: number[] } | undefined {
  const tr = t?.producer;
  const r = tr?.inputs[0]?.producer;
  if (!tr || tr.opType !== 'Transpose' || !r || r.opType !== 'Reshape') return undefined;
  const shape = constInts(r.inputs[1]);
  return shape && shape.length === 4 ? { reshape: r, shape } : undefined;
}

/** Finds the Q·Kᵀ MatMul above the attention probabilities (through softmax, scale and mask ops). */
function scoresMatMul(probs: Value): Node | undefined {
  let frontier: Value[] = [probs];
  for (let depth = 0; depth < 8 && frontier.length; depth++) {
    const next: Value[] = [];
    for (const v of frontier) {
      const p = v.producer;
      if (!p) continue;
      if (p.opType === 'MatMul' && p.inputs.every((x) => x && !x.initializer)) return p;
      if (['Softmax', 'Add', 'Mul', 'Div', 'Sub', 'Where', 'Cast'].includes(p.opType)) for (const x of p.inputs) if (x && !x.initializer) next.push(x);
    }
    frontier = next;
  }
  return undefined;
}

/** Outputs of the nodes from `from` to `to` (inclusive) along use edges: the per-head score tensors. */
function between(from: Node, to: Node): Value[] {
  const seen = new Set<Node>([from]);
  const queue = [from];
  const out: Value[] = [];
  while (queue.length && seen.size < 32) {
    const n = queue.shift()!;
    for (const o of n.outputs) {
      if (!o) continue;
      out.push(o);
      if (n === to) continue;
      for (const u of o.uses) if (!seen.has(u.node)) (seen.add(u.node), queue.push(u.node));
    }
  }
  return out;
}

/** Attention blocks of the main graph as head groups (blocked ones carry the reason). */
export function headGroups(model: Model): HeadGroup[] {
  const out: HeadGroup[] = [];
  for (const ctx of model.graph.nodes) {
    if (ctx.opType !== 'MatMul' || !ctx.inputs[0] || !ctx.inputs[1] || ctx.inputs.some((x) => x?.initializer)) continue;
    // ctx → Transpose [0,2,1,3] → Reshape (merge) → MatMul Wo
    const tr = only(ctx.outputs[0]);
    if (!perm(tr, [0, 2, 1, 3])) continue;
    const merge = only(tr!.outputs[0]);
    if (!merge || merge.opType !== 'Reshape') continue;
    const oProj = only(merge.outputs[0]);
    const vSplit = splitOf(ctx.inputs[1]);
    if (!oProj || oProj.opType !== 'MatMul' || oProj.inputs[0] !== merge.outputs[0] || !oProj.inputs[1]?.initializer || !vSplit) continue;
    const qk = scoresMatMul(ctx.inputs[0]);
    if (!qk) continue;
    const qSplit = splitOf(qk.inputs[0]);
    const kSplit = splitOf(qk.inputs[1]);
    if (!qSplit || !kSplit || !perm(qk.inputs[0]!.producer, [0, 2, 1, 3]) || !perm(qk.inputs[1]!.producer, [0, 2, 3, 1])) continue;
    const wo = oProj.inputs[1];
    const g: HeadGroup = { seed: oProj, channels: 0, headDim: 0, members: [], slices: [], depthwise: [], reshapes: [], clearTypes: [] };
    out.push(g);
    const projs = [qSplit, kSplit, vSplit].map((s) => ({ s, p: projectionOf(s.reshape.inputs[0]!) }));
    const bad = projs.find((x) => typeof x.p === 'string');
    if (bad) {
      g.blocked = bad.p as string;
      continue;
    }
    const width = wo.initializer!.dims[0]!;
    const [, , h0, d0] = qSplit.shape;
    const d = d0! > 0 ? d0! : h0! > 0 ? width / h0! : 0;
    if (!(d > 0 && Number.isInteger(width / d))) {
      g.blocked = `cannot read the head size from ${qSplit.reshape.describe()}`;
      continue;
    }
    g.headDim = d;
    g.channels = width / d;
    const slices: Slice[] = [];
    const members: Member[] = [];
    for (const { s, p } of projs as Array<{ s: { reshape: Node; shape: number[] }; p: Projection }>) {
      if (p.weight.initializer!.dims[1] !== width) g.blocked = `projection '${p.weight.name}' has ${p.weight.initializer!.dims[1]} outputs, not ${width}`;
      if (p.weight.uses.length !== 1) g.blocked = `projection weight '${p.weight.name}' is shared`;
      slices.push({ value: p.weight, axis: 1, block: d, offset: 0, role: 'out' });
      for (const c of p.params) {
        const dims = c.value.initializer!.dims;
        if (dims.length === 0 || dims[dims.length - 1] === 1) continue;
        if (dims[dims.length - 1] !== width) g.blocked = `'${c.value.name}' does not span the ${width} projection features`;
        slices.push({ value: c.value, axis: dims.length - 1, block: d, offset: 0, role: 'param', use: { node: c.node, index: c.index } });
      }
      for (const v of p.chain) members.push({ value: v, axis: -1, block: d, offset: 0, width });
      if (s.shape[2]! > 0) g.reshapes.push({ node: s.reshape, position: 2, unit: 1 });
      else if (s.shape[3]! <= 0) g.blocked = `${s.reshape.describe()} gives neither the head count nor the head size`;
      g.clearTypes.push(s.reshape.outputs[0]!, s.reshape.outputs[0]!.uses[0]!.node.outputs[0]!);
    }
    const mergeShape = constInts(merge.inputs[1]);
    if (!mergeShape || mergeShape.length !== 3) g.blocked ??= `${merge.describe()} shape is not a rank-3 constant`;
    else if (mergeShape[2]! > 0) g.reshapes.push({ node: merge, position: 2, unit: d });
    if (wo.uses.length !== 1) g.blocked ??= `output projection weight '${wo.name}' is shared`;
    slices.push({ value: wo, axis: 0, block: d, offset: 0, role: 'in' });
    members.push({ value: merge.outputs[0]!, axis: -1, block: d, offset: 0, width });
    g.clearTypes.push(...between(qk, ctx), tr!.outputs[0]!);
    g.slices = slices;
    g.members = members;
  }
  return out;
}
