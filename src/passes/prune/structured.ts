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
import { type ChannelGroup, channelGroups, inferredShapes } from './dependency.js';
import { checkRatio, expandKeep, gatherAxis } from './slicing.js';
import { type HeadGroup, headGroups } from './heads.js';
import { readFloats, writeFloats } from './weights.js';
import { checkRunsInOrt, runsOnRandomInputs } from './ort-check.js';

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

/** Shrinks every tensor, weight slice, attribute and shape constant of `group` to the `keep` channels. */
export function pruneGroup(model: Model, group: ChannelGroup | HeadGroup, keep: readonly number[]): void {
  const g = model.graph;
  const n = keep.length;
  for (const s of group.slices) {
    const idx = expandKeep(keep, s.block);
    const { data, dims } = gatherAxis(readFloats(s.value), s.value.initializer!.dims, s.axis, idx);
    if (s.role !== 'param' || s.value.uses.length === 1) {
      writeFloats(s.value, data, dims);
      continue;
    }
    // A constant other nodes read too: this reader gets its own sliced copy.
    const copy = g.addInitializer(g.uniqueName(`${s.value.name}_pruned`), Tensor.fromArray(DataType.FLOAT, dims, data));
    s.use!.node.setInput(s.use!.index, copy);
  }
  for (const node of group.depthwise) node.setAttribute('group', n);
  for (const m of group.members) {
    const t = m.value.type;
    if (t?.kind !== 'tensor' || !t.shape) continue;
    const at = t.shape.length + m.axis;
    if (at >= 0 && typeof t.shape[at] === 'number') {
      const shape = [...t.shape];
      shape[at] = n * m.block;
      m.value.type = { ...t, shape };
    }
  }
  {
    for (const r of group.reshapes) {
      const old = r.node.inputs[1]!;
      const vals = Array.from(old.initializer!.toArray() as BigInt64Array, Number);
      vals[r.position] = n * r.unit;
      r.node.setInput(1, g.addInitializer(g.uniqueName(`${old.name}_pruned`), Tensor.fromArray(DataType.INT64, [vals.length], vals)));
      if (!old.uses.length && !old.isGraphInput) g.removeInitializer(old);
    }
    if ('clearTypes' in group) for (const v of group.clearTypes) if (!v.isGraphOutput && !v.isGraphInput) v.type = undefined;
  }
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
      const runnable = opts.checkRuntime !== false && (await runsOnRandomInputs(model));
      // Scores first, on the original weights: pruning one group changes weights that other groups read.
      const plans = chosen.map((grp) => {
        const isHeads = 'headDim' in grp;
        return { grp, isHeads, keep: channelsToKeep(groupImportance(grp, kind, opts.gradients), isHeads ? opts.headRatio ?? opts.ratio : opts.ratio) };
      });
      const reports: GroupReport[] = [];
      for (const p of plans) {
        if (p.keep.length === p.grp.channels) continue;
        pruneGroup(model, p.grp, p.keep);
        reports.push({ kind: p.isHeads ? 'heads' : 'channels', node: p.grp.seed.name || p.grp.seed.opType, before: p.grp.channels, after: p.keep.length });
      }
      if (reports.length && opts.checkRuntime !== false) await checkRunsInOrt(model, 'prune-structured', runnable);
      const runtimeCheck = opts.checkRuntime === false ? 'skipped' : runnable ? 'loads and runs' : 'loads (the input model does not run on random inputs either)';
      return { model, modified: reports.length > 0, stats: { importance: kind, ratio: opts.ratio, groups: reports, blocked, runtimeCheck } };
    },
  };
}
