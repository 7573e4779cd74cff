/**
 * Structured pruning: removes whole Conv channels, hidden units, FFN neurons and attention heads from the
 * graph, so the model that comes out has smaller weights and does fewer FLOPs on any dense kernel. Which
 * tensors shrink together comes from the dependency analysis (dependency.ts, heads.ts); which channels go
 * comes from an importance score per channel of each group:
 * - `l1` / `l2`: the L1 norm / L2 norm of every weight slice of the channel across the whole group
 *   (the filters that create it and the weights that read it), as Li et al. (2017) and Torch-Pruning do;
 * - `taylor`: Σ|w·∂L/∂w| over the same slices (first-order Taylor estimate of the loss change, Molchanov
 *   et al. 2019), with gradients from the training engine on real batches (`gradients` option).
 * Each group loses ⌊ratio·C⌋ channels (always keeping one), the least important ones.
 */
import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import { Tensor } from '../../ir/tensor.js';
import { DataType } from '../../ir/dtype.js';
import type { Pass } from '../pass.js';
import { prepareForQuantizationPass } from '../registry.js';
import { type ChannelGroup, channelGroups, inferredShapes, type Slice } from './dependency.js';
import type { Node, Value } from '../../ir/node.js';
import { checkRatio, gatherAxis } from './slicing.js';
import { type HeadGroup, headGroups } from './heads.js';
import { readFloats, writeFloats } from './weights.js';
import { proveInRuntime, requireProven } from '../runtime-proof.js';

export type Importance = 'l1' | 'l2' | 'taylor';
export const IMPORTANCE_KINDS: readonly Importance[] = Object.freeze(['l1', 'l2', 'taylor'] as Importance[]);

/** What structured pruning removes: conv channels and hidden units/FFN neurons, attention heads, or both. */
export type StructuredTarget = 'channels' | 'heads' | 'all';

export interface StructuredOptions {
  /** Fraction of each group's channels (or heads) to remove, in [0, 1). */
  ratio: number;
  /** Ratio for attention heads (default `ratio`). */
  headRatio?: number;
  importance?: Importance;
  /** Gradients of the loss by initializer name (needed for `taylor`; summed over batches). */
  gradients?: ReadonlyMap<string, Float32Array>;
  target?: StructuredTarget;
  /** Layers to leave alone: a group is skipped when the node that creates its channels (as reported) is named. */
  exclude?: readonly string[];
  /** Check that the output loads and runs in ONNX Runtime (default true). */
  checkRuntime?: boolean;
}

/** One importance score per channel (higher = keep). */
export function groupImportance(group: ChannelGroup, kind: Importance, gradients?: ReadonlyMap<string, Float32Array>): Float64Array {
  const score = new Float64Array(group.channels);
  for (const s of group.slices) {
    if (s.role === 'param') continue;
    const data = readFloats(s.value);
    const g = kind === 'taylor' ? gradients?.get(s.value.name) : undefined;
    if (kind === 'taylor' && !g) throw new FrugalError('E_USAGE', `taylor importance needs the gradient of '${s.value.name}'`);
    const dims = s.value.initializer!.dims;
    const inner = dims.slice(s.axis + 1).reduce((a, b) => a * b, 1);
    const n = dims[s.axis]!;
    for (let i = 0; i < data.length; i++) {
      const c = Math.floor((Math.floor(i / inner) % n) / s.block);
      const w = data[i]!;
      score[c] += kind === 'l1' ? Math.abs(w) : kind === 'l2' ? w * w : Math.abs(w * g![i]!);
    }
  }
  if (kind === 'l2') for (let c = 0; c < score.length; c++) score[c] = Math.sqrt(score[c]!);
  return score;
}

/** Channels to keep (ascending): all but the ⌊ratio·C⌋ least important, at least one. */
export function channelsToKeep(score: Float64Array, ratio: number): number[] {
  const c = score.length;
  const remove = Math.min(Math.floor(ratio * c + 1e-9), c - 1);
  const order = Array.from({ length: c }, (_, i) => i).sort((a, b) => score[a]! - score[b]! || a - b);
  return order.slice(remove).sort((a, b) => a - b);
}

/** Channels to remove, as indices of an axis in its original coordinates. */
function removedIndices(group: ChannelGroup, keep: readonly number[], block: number, offset: number): number[] {
  const kept = new Set(keep);
  const out: number[] = [];
  for (let c = 0; c < group.channels; c++) if (!kept.has(c)) for (let j = 0; j < block; j++) out.push(offset + c * block + j);
  return out;
}

/**
 * Shrinks every tensor, weight slice, attribute and shape constant of the planned groups to their `keep`
 * channels. Removals are gathered per tensor axis in original coordinates first and applied once, so
 * groups that share an axis (the ranges of a Concat) or a tensor (a weight's two axes) compose.
 */
export function pruneGroups(model: Model, plans: ReadonlyArray<{ group: ChannelGroup | HeadGroup; keep: readonly number[] }>): void {
  const g = model.graph;
  const cuts = new Map<string, { slice: Slice; removed: Set<number> }>();
  const axisCuts = new Map<Value, Map<number, number>>();
  const reshapes = new Map<Node, Map<number, number>>();
  for (const { group, keep } of plans) {
    for (const s of group.slices) {
      const key = `${s.value.name}#${s.axis}#${s.role === 'param' && s.value.uses.length > 1 ? `${s.use!.node.name}:${s.use!.index}` : ''}`;
      const e = cuts.get(key) ?? { slice: s, removed: new Set<number>() };
      for (const i of removedIndices(group, keep, s.block, s.offset)) e.removed.add(i);
      cuts.set(key, e);
    }
    for (const node of group.depthwise) node.setAttribute('group', keep.length);
    const gone = group.channels - keep.length;
    for (const m of group.members) {
      const byAxis = axisCuts.get(m.value) ?? new Map<number, number>();
      byAxis.set(m.axis, (byAxis.get(m.axis) ?? 0) + gone * m.block);
      axisCuts.set(m.value, byAxis);
    }
    for (const r of group.reshapes) {
      const byPos = reshapes.get(r.node) ?? new Map<number, number>();
      byPos.set(r.position, (byPos.get(r.position) ?? 0) + gone * r.unit);
      reshapes.set(r.node, byPos);
    }
    if ('clearTypes' in group) for (const v of group.clearTypes) if (!v.isGraphOutput && !v.isGraphInput) v.type = undefined;
  }
  for (const { slice: s, removed } of cuts.values()) {
    const dims = s.value.initializer!.dims;
    const idx = Array.from({ length: dims[s.axis]! }, (_, i) => i).filter((i) => !removed.has(i));
    const out = gatherAxis(readFloats(s.value), dims, s.axis, idx);
    if (s.role !== 'param' || s.value.uses.length === 1) {
      writeFloats(s.value, out.data, out.dims);
      continue;
    }
    // A constant other nodes read too: this reader gets its own sliced copy.
    const copy = g.addInitializer(g.uniqueName(`${s.value.name}_pruned`), Tensor.fromArray(DataType.FLOAT, out.dims, out.data));
    s.use!.node.setInput(s.use!.index, copy);
  }
  for (const [v, byAxis] of axisCuts) {
    const t = v.type;
    if (t?.kind !== 'tensor' || !t.shape) continue;
    const shape = [...t.shape];
    for (const [axis, n] of byAxis) {
      const at = shape.length + axis;
      const d = shape[at];
      if (at >= 0 && typeof d === 'number') shape[at] = d - n;
    }
    v.type = { ...t, shape };
  }
  for (const [node, byPos] of reshapes) {
    const old = node.inputs[1]!;
    const vals = Array.from(old.initializer!.toArray() as BigInt64Array, Number);
    for (const [pos, n] of byPos) vals[pos] = vals[pos]! - n;
    node.setInput(1, g.addInitializer(g.uniqueName(`${old.name}_pruned`), Tensor.fromArray(DataType.INT64, [vals.length], vals)));
    if (!old.uses.length && !old.isGraphInput) g.removeInitializer(old);
  }
}

/** Shrinks one group to its `keep` channels (see {@link pruneGroups}). */
export function pruneGroup(model: Model, group: ChannelGroup | HeadGroup, keep: readonly number[]): void {
  pruneGroups(model, [{ group, keep }]);
}

export interface GroupReport {
  kind: 'channels' | 'heads';
  /** The layer that creates the channels (or the attention output projection, for heads). */
  node: string;
  before: number;
  after: number;
}

/** The groups a model offers to structured pruning, and the ones it cannot prune with the reason. */
export function analyzeStructure(model: Model, target: StructuredTarget = 'all'): { groups: Array<ChannelGroup | HeadGroup>; blocked: Array<{ node: string; reason: string }> } {
  const groups: Array<ChannelGroup | HeadGroup> = [];
  if (target !== 'heads') groups.push(...channelGroups(model, inferredShapes(model)));
  if (target !== 'channels') groups.push(...headGroups(model));
  return {
    groups: groups.filter((x) => !x.blocked && x.channels > 1),
    blocked: groups.filter((x) => x.blocked).map((x) => ({ node: x.seed.name || x.seed.opType, reason: x.blocked! })),
  };
}

/** Structured pruning as a pass; its stats list each group's channels before and after, and the blocked groups with reasons. */
export function structuredPrunePass(opts: StructuredOptions): Pass {
  checkRatio(opts.ratio);
  if (opts.headRatio !== undefined) checkRatio(opts.headRatio);
  const kind = opts.importance ?? 'l1';
  if (kind === 'taylor' && !opts.gradients) throw new FrugalError('E_USAGE', '--importance taylor needs gradients from real batches (give a --dataset)');
  return {
    name: 'prune-structured',
    async run(model) {
      // Topological order and Constant-node weights as initializers, as the analysis reads them.
      prepareForQuantizationPass.run(model);
      const { groups, blocked } = analyzeStructure(model, opts.target ?? 'all');
      const exclude = new Set(opts.exclude ?? []);
      const chosen = groups.filter((x) => !exclude.has(x.seed.name));
      if (!chosen.length) {
        const why = blocked.slice(0, 3).map((b) => `${b.node}: ${b.reason}`).join('; ');
        throw new FrugalError('E_UNSUPPORTED', `the model has nothing structurally prunable${why ? ` (${why})` : ' (no Conv, MatMul or Gemm with constant weights)'}`);
      }
      const before = opts.checkRuntime !== false ? await proveInRuntime(model) : undefined;
      // Scores first, on the original weights: pruning one group changes weights that other groups read.
      const plans = chosen.map((grp) => {
        const isHeads = 'headDim' in grp;
        return { grp, isHeads, keep: channelsToKeep(groupImportance(grp, kind, opts.gradients), isHeads ? opts.headRatio ?? opts.ratio : opts.ratio) };
      });
      const changed = plans.filter((p) => p.keep.length < p.grp.channels);
      pruneGroups(model, changed.map((p) => ({ group: p.grp, keep: p.keep })));
      const reports: GroupReport[] = changed.map((p) => ({ kind: p.isHeads ? 'heads' : 'channels', node: p.grp.seed.name || p.grp.seed.opType, before: p.grp.channels, after: p.keep.length }));
      const runtimeCheck = before && reports.length ? await requireProven('prune-structured', before, model) : 'skipped';
      return { model, modified: reports.length > 0, stats: { importance: kind, ratio: opts.ratio, groups: reports, blocked, runtimeCheck } };
    },
  };
}
