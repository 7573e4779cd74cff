import { DataType } from '../dtype.js';
import type { Dim } from '../types.js';
import { attrOrInput, type OutSpec, type RuleContext, type RuleTable, specOf } from './context.js';
import { addDim, broadcastShapes, canonicalDim, divDim, mulDim, normAxis, productDims, unifyDim } from './dims.js';
import { MAX_TRACKED } from './fold.js';

/**
 * Tensor manipulation: reshaping, indexing, joining and splitting, padding and resizing. Where an op moved an
 * attribute to an input (Reshape opset 5, Slice 10, Pad 11, Squeeze/Unsqueeze/Split 13...), the rule
 * reads whichever the node's opset defines.
 */

/** Treats huge Slice bounds (INT64_MAX/MIN, clamped to safe integers on decode) as "to the end". */
const HUGE = 2 ** 52;

const reshape = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const inShape = ctx.shape(0);
  const target: Dim[] | undefined = ctx.opset < 5 ? ctx.node.attrInts('shape') : ctx.values(1);
  const allowZero = ctx.node.attrInt('allowzero', 0) === 1;
  const elemType = ctx.elem(0);
  const values = ctx.values(0);
  if (!target) {
    const t = ctx.shape(1);
    // Rank is known from the length of a 1-D shape input even when its contents are not.
    return [{ elemType, shape: t && t.length === 1 && typeof t[0] === 'number' ? new Array<Dim>(t[0]).fill(null) : undefined, values }];
  }
  const out: Dim[] = target.map((d, i) => {
    if (d === 0 && !allowZero) return inShape ? (inShape[i] ?? null) : null;
    return d;
  });
  const neg = out.findIndex((d) => d === -1);
  if (neg >= 0) {
    const known = productDims(out.filter((_, i) => i !== neg));
    out[neg] = inShape ? divDim(productDims(inShape), known) : null;
  }
  return [{ elemType, shape: out.map((d) => (typeof d === 'number' && d < 0 ? null : canonicalDim(d))), values }];
};

const flatten = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  if (!s) return [{ elemType: ctx.elem(0) }];
  let axis = ctx.node.attrInt('axis', 1);
  if (axis < 0) axis += s.length;
  return [{ elemType: ctx.elem(0), shape: [productDims(s.slice(0, axis)), productDims(s.slice(axis))], values: ctx.values(0) }];
};

const transpose = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  if (!s) return [{ elemType: ctx.elem(0) }];
  const perm = ctx.node.attrInts('perm') ?? s.map((_, i) => s.length - 1 - i);
  if (perm.length !== s.length) ctx.fail(`perm [${perm.join(',')}] does not match input rank ${s.length}`);
  const v = ctx.values(0);
  return [{ elemType: ctx.elem(0), shape: perm.map((p) => s[p]!), values: s.length <= 1 ? v : undefined }];
};

const squeeze = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const axes = attrOrInput(ctx, 'axes', 1, 13);
  const base = { elemType: ctx.elem(0), values: ctx.values(0) };
  if (!s || axes === 'unknown') return [base];
  if (axes === undefined || axes.length === 0) {
    // Without axes every 1 goes; a symbolic dim might be 1, so the rank is unknown then.
    if (s.some((d) => typeof d !== 'number')) return [base];
    return [{ ...base, shape: s.filter((d) => d !== 1) }];
  }
  const drop = new Set(axes.map((a) => normAxis(a, s.length) ?? ctx.fail(`axis ${a} out of range for rank ${s.length}`)));
  for (const a of drop) if (typeof s[a] === 'number' && s[a] !== 1) ctx.fail(`cannot squeeze axis ${a} of size ${s[a]}`);
  return [{ ...base, shape: s.filter((_, i) => !drop.has(i)) }];
};

const unsqueeze = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const axes = attrOrInput(ctx, 'axes', 1, 13);
  const base = { elemType: ctx.elem(0), values: ctx.values(0) };
  if (!s || axes === 'unknown' || axes === undefined) return [base];
  const rank = s.length + axes.length;
  const ins = new Set(axes.map((a) => normAxis(a, rank) ?? ctx.fail(`axis ${a} out of range for output rank ${rank}`)));
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(ins.has(i) ? 1 : s[k++]!);
  return [{ ...base, shape: out }];
};

const concat = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const ins = Array.from({ length: ctx.inputCount }, (_, i) => i).filter((i) => ctx.has(i));
  const shapes = ins.map((i) => ctx.shape(i));
  const elemType = ins.map((i) => ctx.elem(i)).find((t) => t !== undefined);
  const rankOf = shapes.find((s) => s !== undefined)?.length;
  if (rankOf === undefined) return [{ elemType }];
  const axis = normAxis(ctx.node.attrInt('axis', ctx.opset < 4 ? 1 : 0), rankOf);
  if (axis === undefined) ctx.fail(`axis ${ctx.node.attrInt('axis')} out of range for rank ${rankOf}`);
  const out: Dim[] = [];
  for (let d = 0; d < rankOf; d++) {
    let acc: Dim = d === axis ? 0 : null;
    for (const s of shapes) {
      if (!s) {
        if (d === axis) acc = null;
        continue;
      }
      if (s.length !== rankOf) ctx.fail(`inputs have different ranks (${rankOf} and ${s.length})`);
      if (d === axis) acc = acc === null ? null : addDim(acc, s[d]!);
      else {
        const u = unifyDim(acc, s[d]!);
        if (u === undefined) ctx.fail(`dimension ${d} differs between inputs (${acc} vs ${s[d]})`);
        acc = u;
      }
    }
    out.push(acc);
  }
  const vals = ins.map((i) => ctx.values(i));
  const values = axis === 0 && vals.every((v) => v) ? vals.flat() as Dim[] : undefined;
  return [{ elemType, shape: out, values }];
};

const gather = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  if (!data || !idx) return [{ elemType: ctx.elem(0) }];
  const axis = normAxis(ctx.node.attrInt('axis', 0), data.length) ?? ctx.fail(`axis ${ctx.node.attrInt('axis', 0)} out of range for rank ${data.length}`);
  const shape = [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)];
  let values: Dim[] | undefined;
  const dv = ctx.values(0);
  const iv = ctx.nums(1);
  if (data.length === 1 && dv && iv && typeof data[0] === 'number') {
    values = iv.map((i) => dv[i < 0 ? i + dv.length : i] ?? null);
  }
  return [{ elemType: ctx.elem(0), shape, values }];
};

const gatherND = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  const b = ctx.node.attrInt('batch_dims', 0);
  const last = idx?.[idx.length - 1];
  if (!data || !idx || typeof last !== 'number') return [{ elemType: ctx.elem(0) }];
  return [{ elemType: ctx.elem(0), shape: [...idx.slice(0, -1), ...data.slice(b + last)] }];
};

/** Clamped start/end of one sliced axis per the Slice spec; returns the output length. */
export function sliceLength(dim: number, start: number, end: number, step: number): { start: number; len: number } {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = Math.min(Math.max(start, 0), dim);
    end = Math.min(Math.max(end, 0), dim);
    return { start, len: Math.max(0, Math.ceil((end - start) / step)) };
  }
  start = Math.min(Math.max(start, 0), dim - 1);
  end = Math.min(Math.max(end, -1), dim - 1);
  return { start, len: Math.max(0, Math.ceil((end - start) / step)) };
}

const slice = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const elemType = ctx.elem(0);
  let starts: number[] | undefined, ends: number[] | undefined, axes: number[] | undefined, steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = ctx.node.attrInts('starts');
    ends = ctx.node.attrInts('ends');
    axes = ctx.node.attrInts('axes');
  } else {
    starts = ctx.nums(1);
    ends = ctx.nums(2);
    axes = ctx.has(3) ? ctx.nums(3) : undefined;
    steps = ctx.has(4) ? ctx.nums(4) : undefined;
    if ((ctx.has(3) && !axes) || (ctx.has(4) && !steps)) return [{ elemType, shape: s?.map(() => null) }];
  }
  if (!s) return [{ elemType }];
  if (!starts || !ends) return [{ elemType, shape: s.map(() => null) }];
  axes ??= starts.map((_, i) => i);
  steps ??= starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    ctx.fail(`starts, ends, axes and steps must have the same length (got ${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
  }
  const out: Dim[] = [...s];
  const v = ctx.values(0);
  let values: Dim[] | undefined;
  for (let k = 0; k < axes.length; k++) {
    const a = normAxis(axes[k]!, s.length) ?? ctx.fail(`axis ${axes[k]} out of range for rank ${s.length}`);
    const d = s[a]!;
    const st = starts[k]!, en = ends[k]!, step = steps[k] ?? 1;
    if (step === 0) ctx.fail('slice step cannot be 0');
    if (typeof d === 'number') {
      const r = sliceLength(d, st, en, step);
      out[a] = r.len;
      if (s.length === 1 && v) values = Array.from({ length: r.len }, (_, i) => v[r.start + i * step] ?? null);
    } else if (st === 0 && step === 1 && en >= HUGE) out[a] = d; // whole axis of a symbolic dim
    else out[a] = null; // the clamping depends on the unknown size
  }
  return [{ elemType, shape: out, values }];
};

const split = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const n = ctx.node.outputs.length;
  const elemType = ctx.elem(0);
  const none = () => ctx.node.outputs.map(() => ({ elemType, shape: s?.map(() => null) }));
  if (!s) return ctx.node.outputs.map(() => ({ elemType }));
  const axis = normAxis(ctx.node.attrInt('axis', 0), s.length) ?? ctx.fail(`axis out of range for rank ${s.length}`);
  let sizes: number[] | undefined;
  if (ctx.opset < 13) sizes = ctx.node.attrInts('split') ?? (ctx.opset < 2 && ctx.has(1) ? ctx.nums(1) : undefined);
  else if (ctx.has(1)) {
    sizes = ctx.nums(1);
    if (!sizes) return none();
  }
  const d = s[axis]!;
  const outs: Dim[] = [];
  if (sizes) outs.push(...sizes);
  else if (typeof d === 'number') {
    // Opset 18's num_outputs allows an uneven split: ceil(d/n) each, the last one smaller.
    const chunk = ctx.opset >= 18 ? Math.ceil(d / n) : d / n;
    if (!Number.isInteger(chunk)) ctx.fail(`cannot split dimension ${d} evenly into ${n} outputs`);
    for (let i = 0; i < n; i++) outs.push(Math.max(0, Math.min(chunk, d - chunk * i)));
  } else {
    const q = divDim(d, n);
    for (let i = 0; i < n; i++) outs.push(q);
  }
  return ctx.node.outputs.map((_, i) => ({ elemType, shape: s.map((x, j) => (j === axis ? (outs[i] ?? null) : x)) }));
};

const expand = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const target = ctx.values(1);
  const s = ctx.shape(0);
  if (!target) {
    const len = ctx.shape(1)?.[0];
    return [{ elemType: ctx.elem(0), shape: typeof len === 'number' && s ? new Array<Dim>(Math.max(len, s.length)).fill(null) : undefined }];
  }
  const r = broadcastShapes([s, target]);
  if (typeof r === 'string') ctx.fail(r);
  const v = ctx.values(0);
  const n = r ? productDims(r) : null;
  const values = v && v.length === 1 && typeof n === 'number' && n <= MAX_TRACKED ? new Array<Dim>(n).fill(v[0]!) : undefined;
  return [{ elemType: ctx.elem(0), shape: r, values }];
};

const tile = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const reps = ctx.values(1);
  if (!s) return [{ elemType: ctx.elem(0) }];
  if (!reps) return [{ elemType: ctx.elem(0), shape: s.map(() => null) }];
  return [{ elemType: ctx.elem(0), shape: s.map((d, i) => mulDim(d, reps[i] ?? null)) }];
};

const pad = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const elemType = ctx.elem(0);
  if (!s) return [{ elemType }];
  const pads = ctx.opset < 11 ? (ctx.node.attrInts('pads') ?? ctx.node.attrInts('paddings')) : ctx.nums(1);
  if (!pads) return [{ elemType, shape: s.map(() => null) }];
  let axes = s.map((_, i) => i);
  if (ctx.opset >= 18 && ctx.has(3)) {
    const a = ctx.nums(3);
    if (!a) return [{ elemType, shape: s.map(() => null) }];
    axes = a.map((x) => normAxis(x, s.length) ?? ctx.fail(`axis ${x} out of range`));
  }
  const n = axes.length;
  if (pads.length !== 2 * n) ctx.fail(`pads has ${pads.length} entries, expected ${2 * n}`);
  const out = [...s];
  axes.forEach((a, k) => (out[a] = addDim(s[a]!, pads[k]! + pads[k + n]!)));
  return [{ elemType, shape: out }];
};

/** Resize (opset 10: X, scales; 11+: X, roi, scales, sizes) and Upsample (scales attr, then input). */
const resize = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const elemType = ctx.elem(0);
  if (!s) return [{ elemType }];
  const isUpsample = ctx.node.opType === 'Upsample';
  let scales: number[] | undefined;
  let sizes: Dim[] | undefined;
  if (isUpsample) scales = ctx.opset < 9 ? (ctx.node.attr('scales') as number[] | undefined) : ctx.nums(1);
  else if (ctx.opset < 11) scales = ctx.nums(1);
  else {
    // Sizes are often computed from Shape, so they may hold symbols (the batch dim).
    sizes = ctx.has(3) ? ctx.values(3) : undefined;
    if (!sizes) scales = ctx.has(2) ? ctx.nums(2) : undefined;
    if (scales && scales.length === 0) scales = undefined;
    if (sizes && sizes.length === 0) sizes = undefined;
  }
  const axes = ctx.opset >= 18 ? (ctx.node.attrInts('axes')?.map((a) => normAxis(a, s.length)!) ?? s.map((_, i) => i)) : s.map((_, i) => i);
  const out: Dim[] = [...s];
  if (sizes) {
    const policy = ctx.node.attrString('keep_aspect_ratio_policy', 'stretch');
    if (policy === 'stretch' || ctx.opset < 18) axes.forEach((a, k) => (out[a] = sizes![k]!));
    else {
      const ratios = axes.map((a, k) => {
        const want = sizes![k];
        return typeof s[a] === 'number' && typeof want === 'number' ? want / (s[a] as number) : NaN;
      });
      const r = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a) => (out[a] = typeof s[a] === 'number' && !Number.isNaN(r) ? Math.round(r * (s[a] as number)) : null));
    }
  } else if (scales) {
    axes.forEach((a, k) => {
      const d = s[a]!;
      const f = scales![k]!;
      out[a] = f === 1 ? d : typeof d === 'number' ? Math.floor(d * f) : null;
    });
  } else return [{ elemType, shape: s.map(() => null) }];
  return [{ elemType, shape: out }];
};

const depthToSpace = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const b = ctx.node.attrInt('blocksize', 1);
  if (!s || s.length !== 4) return [{ elemType: ctx.elem(0) }];
  const [n, c, h, w] = s as [Dim, Dim, Dim, Dim];
  return ctx.node.opType === 'DepthToSpace'
    ? [{ elemType: ctx.elem(0), shape: [n, divDim(c, b * b), mulDim(h, b), mulDim(w, b)] }]
    : [{ elemType: ctx.elem(0), shape: [n, mulDim(c, b * b), divDim(h, b), divDim(w, b)] }];
};

const oneHot = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  const depth = ctx.values(1)?.[0] ?? null;
  if (!s) return [{ elemType: ctx.elem(2) }];
  const r = s.length + 1;
  const axis = normAxis(ctx.node.attrInt('axis', -1), r) ?? ctx.fail('axis out of range');
  const out = [...s];
  out.splice(axis, 0, typeof depth === 'number' ? Math.trunc(depth) : null);
  return [{ elemType: ctx.elem(2), shape: out }];
};

export const tensorRules: RuleTable = {
  Reshape: reshape,
  Flatten: flatten,
  Transpose: transpose,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Concat: concat,
  Gather: gather,
  GatherElements: (ctx) => [{ elemType: ctx.elem(0), shape: ctx.shape(1) }],
  GatherND: gatherND,
  Slice: slice,
  Split: split,
  Expand: expand,
  Tile: tile,
  Pad: pad,
  Resize: resize,
  Upsample: resize,
  DepthToSpace: depthToSpace,
  SpaceToDepth: depthToSpace,
  OneHot: oneHot,
  NonZero: (ctx) => [{ elemType: DataType.INT64, shape: [ctx.shape(0)?.length ?? null, null] }],
  Compress: (ctx) => {
    const s = ctx.shape(0);
    const axis = ctx.node.attrInt('axis');
    if (axis === undefined || !s) return [{ elemType: ctx.elem(0), shape: [null] }];
    return [{ elemType: ctx.elem(0), shape: s.map((d, i) => (i === normAxis(axis, s.length) ? null : d)) }];
  },
  Identity: (ctx) => [{ ...specOf(ctx.type(0)), type: ctx.type(0)?.kind === 'tensor' ? undefined : ctx.type(0), values: ctx.values(0) }],
};
