import { DataType } from '../dtype.js';
import type { Dim, Shape } from '../types.js';
import { type OutSpec, type RuleContext, type RuleTable, specOf } from './context.js';
import { broadcastShapes, divDim, mulDim, normAxis, unifyDim } from './dims.js';

/**
 * Neural-network operators: matrix products, convolutions and pooling, normalizations, recurrent
 * layers, and the quantized variants of each (QDQ, integer and QLinear forms).
 */

/** Spatial output size of a convolution or pooling window (ONNX formulas, ORT's ceil-mode rule). */
export function windowOutput(
  inDim: Dim,
  k: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
  autoPad: string,
  ceilMode: boolean,
): Dim {
  if (typeof inDim !== 'number') {
    // SAME keeps ceil(in/stride): exact for stride 1 even when the size is symbolic.
    return (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') && stride === 1 ? inDim : null;
  }
  const span = (k - 1) * dilation + 1;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(inDim / stride);
  if (autoPad === 'VALID') return Math.floor((inDim - span) / stride) + 1;
  const full = inDim + padBegin + padEnd - span;
  if (!ceilMode) return Math.floor(full / stride) + 1;
  let out = Math.ceil(full / stride) + 1;
  // A window that would start entirely inside the end padding is dropped (ONNX spec, PyTorch, ORT).
  if ((out - 1) * stride >= inDim + padBegin) out--;
  return out;
}

interface WindowAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
  autoPad: string;
}

function windowAttrs(ctx: RuleContext, spatial: number, kernel: number[] | undefined): WindowAttrs | undefined {
  const n = ctx.node;
  const k = n.attrInts('kernel_shape') ?? kernel;
  if (!k || k.length !== spatial) return undefined;
  return {
    kernel: k,
    strides: n.attrInts('strides') ?? k.map(() => 1),
    dilations: n.attrInts('dilations') ?? k.map(() => 1),
    pads: n.attrInts('pads') ?? [...k.map(() => 0), ...k.map(() => 0)],
    autoPad: n.attrString('auto_pad', 'NOTSET'),
  };
}

function spatialOut(x: Shape, a: WindowAttrs, ceil: boolean): Dim[] {
  const sp = a.kernel.length;
  return a.kernel.map((k, i) => windowOutput(x[2 + i]!, k, a.strides[i]!, a.dilations[i]!, a.pads[i]!, a.pads[i + sp]!, a.autoPad, ceil));
}

/** Conv-like: input x at `xi`, weight at `wi`; output channels from the weight's first dim. */
function conv(xi: number, wi: number, elemType?: (ctx: RuleContext) => number | undefined): (ctx: RuleContext) => Array<OutSpec | undefined> {
  return (ctx) => {
    const x = ctx.shape(xi);
    const w = ctx.shape(wi);
    const et = elemType ? elemType(ctx) : ctx.elem(xi);
    if (!x) return [{ elemType: et }];
    const a = windowAttrs(ctx, x.length - 2, w?.slice(2).every((d) => typeof d === 'number') ? (w.slice(2) as number[]) : undefined);
    const cout = w?.[0] ?? null;
    if (!a) return [{ elemType: et, shape: [x[0]!, cout, ...x.slice(2).map(() => null)] }];
    const group = ctx.node.attrInt('group', 1);
    if (w && typeof x[1] === 'number' && typeof w[1] === 'number' && x[1] !== w[1] * group) {
      ctx.fail(`input has ${x[1]} channels but weight expects ${w[1]}×group ${group}`);
    }
    return [{ elemType: et, shape: [x[0]!, cout, ...spatialOut(x, a, false)] }];
  };
}

const convTranspose = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  if (!x) return [{ elemType: ctx.elem(0) }];
  const group = ctx.node.attrInt('group', 1);
  const cout = w ? mulDim(w[1]!, group) : null;
  const sp = x.length - 2;
  const a = windowAttrs(ctx, sp, w?.slice(2).every((d) => typeof d === 'number') ? (w.slice(2) as number[]) : undefined);
  const outShape = ctx.node.attrInts('output_shape');
  if (outShape) return [{ elemType: ctx.elem(0), shape: [x[0]!, cout, ...outShape.slice(-sp)] }];
  if (!a) return [{ elemType: ctx.elem(0), shape: [x[0]!, cout, ...x.slice(2).map(() => null)] }];
  const outPad = ctx.node.attrInts('output_padding') ?? a.kernel.map(() => 0);
  const spatial = a.kernel.map((k, i) => {
    const d = x[2 + i]!;
    if (typeof d !== 'number') return null;
    if (a.autoPad === 'SAME_UPPER' || a.autoPad === 'SAME_LOWER') return d * a.strides[i]!;
    const pads = a.autoPad === 'VALID' ? 0 : a.pads[i]! + a.pads[i + sp]!;
    return a.strides[i]! * (d - 1) + outPad[i]! + (k - 1) * a.dilations[i]! + 1 - pads;
  });
  return [{ elemType: ctx.elem(0), shape: [x[0]!, cout, ...spatial] }];
};

const pool = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const x = ctx.shape(0);
  if (!x) return [{ elemType: ctx.elem(0) }, { elemType: DataType.INT64 }];
  const a = windowAttrs(ctx, x.length - 2, undefined);
  if (!a) ctx.fail('kernel_shape is required');
  const ceil = ctx.opset >= 10 && ctx.node.attrInt('ceil_mode', 0) === 1;
  const shape = [x[0]!, x[1]!, ...spatialOut(x, a, ceil)];
  return [{ elemType: ctx.elem(0), shape }, { elemType: DataType.INT64, shape }];
};

const globalPool = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const x = ctx.shape(0);
  return [{ elemType: ctx.elem(0), shape: x ? [x[0]!, x[1]!, ...x.slice(2).map(() => 1)] : undefined }];
};

/** Numpy matmul shapes: 1-D operands are promoted and the promoted axis removed afterwards. */
export function matmulShape(ctx: RuleContext, a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a || !b) return undefined;
  if (a.length === 0 || b.length === 0) ctx.fail('MatMul inputs must not be scalars');
  const A = a.length === 1 ? [1, a[0]!] : a;
  const B = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = A[A.length - 1]!;
  const k2 = B[B.length - 2]!;
  if (unifyDim(k1, k2) === undefined) ctx.fail(`inner dimensions differ: [${a.join(',')}] × [${b.join(',')}]`);
  const batch = broadcastShapes([A.slice(0, -2), B.slice(0, -2)]);
  if (typeof batch === 'string') ctx.fail(batch);
  const out: Dim[] = [...batch!];
  if (a.length !== 1) out.push(A[A.length - 2]!);
  if (b.length !== 1) out.push(B[B.length - 1]!);
  return out;
}

const gemm = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  const tA = ctx.node.attrInt('transA', 0) === 1;
  const tB = ctx.node.attrInt('transB', 0) === 1;
  const m = a ? (tA ? a[1] : a[0]) : null;
  const n = b ? (tB ? b[0] : b[1]) : null;
  const ka = a ? (tA ? a[0] : a[1]) : null;
  const kb = b ? (tB ? b[1] : b[0]) : null;
  if (a && a.length !== 2 && ctx.opset >= 7) ctx.fail(`A must be 2-D, got rank ${a.length}`);
  if (unifyDim(ka ?? null, kb ?? null) === undefined) ctx.fail(`inner dimensions differ (${ka} vs ${kb}) with transA=${+tA} transB=${+tB}`);
  return [{ elemType: ctx.elem(0), shape: [m ?? null, n ?? null] }];
};

/** Recurrent layers: outputs Y, Y_h (and Y_c for LSTM) per the layout attribute (opset 14). */
const recurrent = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const x = ctx.shape(0);
  const r = ctx.shape(2);
  const dirs = ctx.node.attrString('direction', 'forward') === 'bidirectional' ? 2 : 1;
  const hidden: Dim = ctx.node.attrInt('hidden_size') ?? r?.[2] ?? null;
  const layout = ctx.opset >= 14 ? ctx.node.attrInt('layout', 0) : 0;
  const et = ctx.elem(0);
  if (!x) return ctx.node.outputs.map(() => ({ elemType: et }));
  const [seq, batch] = layout === 0 ? [x[0]!, x[1]!] : [x[1]!, x[0]!];
  const y: Dim[] = layout === 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden];
  const h: Dim[] = layout === 0 ? [dirs, batch, hidden] : [batch, dirs, hidden];
  return [{ elemType: et, shape: y }, { elemType: et, shape: h }, { elemType: et, shape: h }];
};

/** Normalization whose first output has the input's shape; BatchNormalization's extra outputs are [C]. */
const batchNorm = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const x = specOf(ctx.type(0));
  const c = { elemType: ctx.elem(1) ?? x.elemType, shape: x.shape ? [x.shape[1] ?? null] : undefined };
  return [x, c, c, c, c];
};

const layerNorm = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const x = specOf(ctx.type(0));
  const s = x.shape;
  if (!s) return [x, { elemType: DataType.FLOAT }, { elemType: DataType.FLOAT }];
  const axis = normAxis(ctx.node.attrInt('axis', -1), s.length) ?? ctx.fail('axis out of range');
  const stat = { elemType: ctx.node.attrInt('stash_type', DataType.FLOAT), shape: s.map((d, i) => (i < axis ? d : 1)) };
  return [x, stat, stat];
};

const quantizeLinear = (ctx: RuleContext): Array<OutSpec | undefined> => [
  { elemType: ctx.elem(2) ?? ctx.node.attrInt('output_dtype') ?? DataType.UINT8, shape: ctx.shape(0) },
];

export const nnRules: RuleTable = {
  MatMul: (ctx) => [{ elemType: ctx.elem(0), shape: matmulShape(ctx, ctx.shape(0), ctx.shape(1)) }],
  MatMulInteger: (ctx) => [{ elemType: DataType.INT32, shape: matmulShape(ctx, ctx.shape(0), ctx.shape(1)) }],
  QLinearMatMul: (ctx) => [{ elemType: ctx.elem(7), shape: matmulShape(ctx, ctx.shape(0), ctx.shape(3)) }],
  Gemm: gemm,
  Conv: conv(0, 1),
  ConvInteger: conv(0, 1, () => DataType.INT32),
  QLinearConv: conv(0, 3, (ctx) => ctx.elem(7)),
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  GlobalLpPool: globalPool,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  LSTM: recurrent,
  GRU: recurrent,
  RNN: recurrent,
  QuantizeLinear: quantizeLinear,
  DequantizeLinear: (ctx) => [{ elemType: ctx.node.attrInt('output_dtype') || ctx.elem(1) || DataType.FLOAT, shape: ctx.shape(0) }],
  DynamicQuantizeLinear: (ctx) => [
    { elemType: DataType.UINT8, shape: ctx.shape(0) },
    { elemType: DataType.FLOAT, shape: [] },
    { elemType: DataType.UINT8, shape: [] },
  ],
  MaxRoiPool: (ctx) => {
    const x = ctx.shape(0);
    const rois = ctx.shape(1);
    const p = ctx.node.attrInts('pooled_shape');
    return [{ elemType: ctx.elem(0), shape: x && p ? [rois?.[0] ?? null, x[1]!, ...p] : undefined }];
  },
  Einsum: (ctx) => [einsum(ctx)],
};

/** Einsum output shape from the equation (explicit `->` form, or implicit: sorted once-used labels). */
function einsum(ctx: RuleContext): OutSpec {
  const eq = ctx.node.attrString('equation', '').replace(/\s/g, '');
  const [lhs, rhsGiven] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  const sizes = new Map<string, Dim>();
  let ellipsis: Shape | undefined = [];
  const counts = new Map<string, number>();
  for (let t = 0; t < terms.length; t++) {
    const s = ctx.shape(t);
    if (!s) return { elemType: ctx.elem(0) };
    const term = terms[t]!;
    const [pre, post] = term.includes('...') ? (term.split('...') as [string, string]) : [term, undefined];
    const nEll = post === undefined ? 0 : s.length - pre.length - post.length;
    const labels = [...pre, ...(post === undefined ? [] : [...new Array<string>(nEll).fill('.'), ...post])];
    if (labels.length !== s.length) ctx.fail(`term '${term}' does not match rank ${s.length}`);
    if (nEll > 0 && ellipsis) {
      const b = broadcastShapes([ellipsis, s.slice(pre.length, pre.length + nEll)]);
      ellipsis = typeof b === 'string' ? ctx.fail(b) : b;
    }
    labels.forEach((l, i) => {
      if (l === '.') return;
      counts.set(l, (counts.get(l) ?? 0) + 1);
      const prev = sizes.get(l);
      const d = s[i]!;
      sizes.set(l, prev === undefined || prev === 1 ? d : d === 1 ? prev : (unifyDim(prev, d) ?? ctx.fail(`label '${l}' has sizes ${prev} and ${d}`)));
    });
  }
  const rhs = rhsGiven ?? `...${[...counts].filter(([, c]) => c === 1).map(([l]) => l).sort().join('')}`;
  const out: Dim[] = [];
  const [rpre, rpost] = rhs.includes('...') ? (rhs.split('...') as [string, string]) : [rhs, undefined];
  for (const l of rpre) out.push(sizes.get(l) ?? null);
  if (rpost !== undefined) {
    if (!ellipsis) return { elemType: ctx.elem(0) };
    out.push(...ellipsis);
    for (const l of rpost) out.push(sizes.get(l) ?? null);
  }
  return { elemType: ctx.elem(0), shape: out };
}

/** ONNX Runtime contrib ops (com.microsoft) that exported and optimized transformer models use. */
export const contribRules: RuleTable = {
  'com.microsoft::Gelu': (ctx) => [specOf(ctx.type(0))],
  'com.microsoft::FastGelu': (ctx) => [specOf(ctx.type(0))],
  'com.microsoft::BiasGelu': (ctx) => [specOf(ctx.type(0))],
  'com.microsoft::QuickGelu': (ctx) => [specOf(ctx.type(0))],
  'com.microsoft::FusedConv': conv(0, 1),
  'com.microsoft::FusedGemm': gemm,
  'com.microsoft::SkipLayerNormalization': (ctx) => {
    const x = specOf(ctx.type(0));
    const stat = { elemType: DataType.FLOAT, shape: x.shape?.map((d, i) => (i === x.shape!.length - 1 ? 1 : d)) };
    return [x, stat, stat, x];
  },
  'com.microsoft::LayerNormalization': layerNorm,
  'com.microsoft::SimplifiedLayerNormalization': layerNorm,
  'com.microsoft::EmbedLayerNormalization': (ctx) => {
    const ids = ctx.shape(0);
    const hidden = ctx.shape(2)?.[1] ?? ctx.shape(5)?.[0] ?? null;
    const et = ctx.elem(2);
    const out = ids ? [ids[0]!, ids[1]!, hidden] : undefined;
    return [
      { elemType: et, shape: out },
      { elemType: DataType.INT32, shape: ids ? [ids[0]!] : undefined },
      { elemType: et, shape: out },
    ];
  },
  'com.microsoft::Attention': (ctx) => {
    const x = ctx.shape(0);
    const w = ctx.shape(1);
    const qkv = ctx.node.attrInts('qkv_hidden_sizes');
    const v = qkv ? qkv[2]! : w ? divDim(w[1]!, 3) : null;
    return [{ elemType: ctx.elem(0), shape: x ? [x[0]!, x[1]!, v] : undefined }, { elemType: ctx.elem(0) }];
  },
  'com.microsoft::DynamicQuantizeMatMul': (ctx) => [{ elemType: DataType.FLOAT, shape: matmulShape(ctx, ctx.shape(0), ctx.shape(1)) }],
  'com.microsoft::MatMulIntegerToFloat': (ctx) => [{ elemType: ctx.elem(2) ?? DataType.FLOAT, shape: matmulShape(ctx, ctx.shape(0), ctx.shape(1)) }],
  /** Y = A · dequantized B: A's type, A's shape with the last dim N (B is packed, its shape says nothing). */
  'com.microsoft::MatMulNBits': (ctx) => {
    const a = ctx.shape(0);
    return [{ elemType: ctx.elem(0), shape: a ? [...a.slice(0, -1), ctx.node.attrInt('N', 0)] : undefined }];
  },
  /** Gather of a block-quantized table: Gather's shape over the logical data dims, the scales' type. */
  'com.microsoft::GatherBlockQuantized': (ctx) => {
    const data = ctx.shape(0);
    const idx = ctx.shape(1);
    if (!data || !idx) return [{ elemType: ctx.elem(2) }];
    const axis = normAxis(ctx.node.attrInt('gather_axis', 0), data.length) ?? ctx.fail(`gather_axis out of range for rank ${data.length}`);
    return [{ elemType: ctx.elem(2), shape: [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)] }];
  },
};
