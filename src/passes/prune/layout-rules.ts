/**
 * Layout rules of the dependency analysis: ops that move, regroup or join the channel axis without
 * mixing channels (Flatten, Squeeze/Unsqueeze, Reshape of leading dims, Pad, Concat, Transpose), as a
 * table from op type to a rule. A rule maps a member tensor across the node, `down` from an input to
 * the output or `up` from the output to an input, or blocks the group saying why.
 */
import type { Node, Value } from '../../ir/node.js';
import type { Shape } from '../../ir/types.js';
import type { Member } from './dependency.js';

export type Dir = 'up' | 'down';

/** What a rule needs from the group being built (dependency.ts's GroupBuilder). */
export interface LayoutContext {
  readonly channels: number;
  shape(v: Value): Shape | undefined;
  join(value: Value, axis: number, block: number, offset?: number, width?: number): void;
  block(reason: string): void;
  /** Records that `node`'s constant shape spells the channel count at `position` (times `unit`). */
  reshapeEdit(node: Node, position: number, unit: number): void;
}

/** Flatten(axis f) of [..., C·b, rest...] → [outer, C·b·∏rest]: channels become blocks of ∏rest. */
function flatten(ctx: LayoutContext, n: Node, m: Member, dir: Dir): void {
  const inShape = ctx.shape(n.inputs[0]!);
  const f = n.attrInt('axis', 1);
  if (!inShape) return ctx.block(`${n.describe()}: input shape unknown`);
  const r = inShape.length;
  const fa = f < 0 ? f + r : f;
  const rest = inShape.slice(fa + 1);
  if (!rest.every((d) => typeof d === 'number')) return ctx.block(`${n.describe()}: flattened dims are not static`);
  const inner = (rest as number[]).reduce((a, b) => a * b, 1);
  if (dir === 'down') {
    if (r + m.axis !== fa) return ctx.block(`${n.describe()} flattens the channels with leading dims`);
    ctx.join(n.outputs[0]!, -1, m.block * inner, m.offset * inner, m.width * inner);
  } else {
    if (m.axis !== -1 || m.block % inner || m.offset % inner || m.width % inner) return ctx.block(`${n.describe()} produces the channels`);
    ctx.join(n.inputs[0]!, fa - r, m.block / inner, m.offset / inner, m.width / inner);
  }
}

/** Squeeze/Unsqueeze with constant axes: the channel axis moves by the axes removed or added after it. */
function squeeze(ctx: LayoutContext, n: Node, m: Member, dir: Dir): void {
  const inRank = ctx.shape(n.inputs[0]!)?.length;
  const outRank = ctx.shape(n.outputs[0]!)?.length;
  const axesInit = n.inputs[1]?.initializer;
  const axes = axesInit ? Array.from(axesInit.toArray() as BigInt64Array, Number) : n.attrInts('axes');
  if (inRank === undefined || outRank === undefined || !axes) return ctx.block(`${n.describe()}: axes or ranks unknown`);
  // Positions of the bigger tensor that the smaller one keeps, in order.
  const big = n.opType === 'Squeeze' ? inRank : outRank;
  const gone = new Set(axes.map((a) => (a < 0 ? a + big : a)));
  const kept = Array.from({ length: big }, (_, i) => i).filter((i) => !gone.has(i));
  const small = kept.length;
  const fromBig = (neg: number): number | undefined => {
    const k = kept.indexOf(big + neg);
    return k < 0 ? undefined : k - small;
  };
  const toBig = (neg: number): number => kept[small + neg]! - big;
  const squeezing = n.opType === 'Squeeze';
  const goingBigToSmall = squeezing === (dir === 'down');
  const axis = goingBigToSmall ? fromBig(m.axis) : toBig(m.axis);
  if (axis === undefined) return ctx.block(`${n.describe()} removes the channel axis`);
  ctx.join(dir === 'down' ? n.outputs[0]! : n.inputs[0]!, axis, m.block, m.offset, m.width);
}

/**
 * Reshape that keeps the last axis (the channels) and only regroups the leading ones, as exporters write
 * around 2-D Gemms: [B, S, C] ↔ [B·S, C]. Its shape must be a constant; an explicit C gets rewritten.
 */
function reshape(ctx: LayoutContext, n: Node, m: Member, dir: Dir): void {
  const shapeInit = n.inputs[1]?.initializer;
  const inShape = ctx.shape(n.inputs[0]!);
  const outShape = ctx.shape(n.outputs[0]!);
  const width = m.width;
  if (!shapeInit || m.axis !== -1 || inShape?.at(-1) !== width || outShape?.at(-1) !== width) return ctx.block(`${n.describe()} ${dir === 'down' ? 'reads' : 'produces'} the channels`);
  const shape = Array.from(shapeInit.toArray() as BigInt64Array, Number);
  const last = shape.length - 1;
  if (shape[last] === width) ctx.reshapeEdit(n, last, m.block);
  else if (shape[last] !== -1 || shape.slice(0, last).some((d) => d === -1)) return ctx.block(`${n.describe()} moves the channels`);
  ctx.join(dir === 'down' ? n.outputs[0]! : n.inputs[0]!, -1, m.block, m.offset, m.width);
}

/** Pad that pads no channel: the channels pass through (pads from the input, or the attribute before opset 11). */
function pad(ctx: LayoutContext, n: Node, m: Member, dir: Dir): void {
  const padsInit = n.inputs[1]?.initializer;
  const pads = padsInit ? Array.from(padsInit.toArray() as BigInt64Array, Number) : n.attrInts('pads');
  const r = ctx.shape(n.inputs[0]!)?.length;
  if (!pads || r === undefined || pads.length !== 2 * r || (n.inputs[3] ?? null) !== null) return ctx.block(`${n.describe()}: pads unknown`);
  const p = r + m.axis;
  if (pads[p] !== 0 || pads[p + r] !== 0) return ctx.block(`${n.describe()} pads the channels`);
  ctx.join(dir === 'down' ? n.outputs[0]! : n.inputs[0]!, m.axis, m.block, m.offset, m.width);
}

/**
 * Concat along the channel axis: each input's channels are one range of the output's, so a group keeps
 * its channels at an offset past the concat (its consumers' weights are sliced in that range only) and,
 * going up, returns to the one input that holds its range. Concat along another axis couples nothing
 * this analysis follows.
 */
function concat(ctx: LayoutContext, n: Node, m: Member, dir: Dir, index: number): void {
  const sizes = n.inputs.map((x) => (x ? ctx.shape(x) : undefined));
  const r = sizes[0]?.length;
  const a = n.attrInt('axis', 0);
  if (r === undefined || (a < 0 ? a + r : a) !== r + m.axis) return ctx.block(`${n.describe()} joins tensors along another axis than the channels`);
  const along = sizes.map((s) => s?.[r + m.axis]);
  if (!along.every((d) => typeof d === 'number')) return ctx.block(`${n.describe()}: input sizes on the channel axis unknown`);
  const starts = (along as number[]).map((_, i) => (along as number[]).slice(0, i).reduce((p, q) => p + q, 0));
  const total = (along as number[]).reduce((p, q) => p + q, 0);
  if (dir === 'down') {
    if (n.inputs.filter((x) => x === m.value).length > 1) return ctx.block(`${n.describe()} reads '${m.value.name}' twice`);
    return ctx.join(n.outputs[0]!, m.axis, m.block, starts[index]! + m.offset, total);
  }
  const end = m.offset + ctx.channels * m.block;
  const j = starts.findIndex((st, i) => st <= m.offset && end <= st + (along[i] as number));
  if (j < 0) return ctx.block(`${n.describe()}: the channels straddle two inputs`);
  ctx.join(n.inputs[j]!, m.axis, m.block, m.offset - starts[j]!, along[j] as number);
}

function transpose(ctx: LayoutContext, n: Node, m: Member, dir: Dir): void {
  const perm = n.attrInts('perm');
  if (!perm) return ctx.block(`${n.describe()} without perm`);
  const r = perm.length;
  if (dir === 'down') ctx.join(n.outputs[0]!, perm.indexOf(r + m.axis) - r, m.block, m.offset, m.width);
  else ctx.join(n.inputs[0]!, perm[r + m.axis]! - r, m.block, m.offset, m.width);
}

/** Op type → rule; `index` is the input the member is (down) or -1 (up). */
export const LAYOUT_RULES: Readonly<Record<string, (ctx: LayoutContext, n: Node, m: Member, dir: Dir, index: number) => void>> = Object.freeze({
  Flatten: (c: LayoutContext, n: Node, m: Member, d: Dir) => flatten(c, n, m, d),
  Squeeze: (c: LayoutContext, n: Node, m: Member, d: Dir) => squeeze(c, n, m, d),
  Unsqueeze: (c: LayoutContext, n: Node, m: Member, d: Dir) => squeeze(c, n, m, d),
  Reshape: (c: LayoutContext, n: Node, m: Member, d: Dir) => reshape(c, n, m, d),
  Pad: (c: LayoutContext, n: Node, m: Member, d: Dir) => pad(c, n, m, d),
  Concat: (c: LayoutContext, n: Node, m: Member, d: Dir, i: number) => concat(c, n, m, d, i),
  Transpose: (c: LayoutContext, n: Node, m: Member, d: Dir) => transpose(c, n, m, d),
});
