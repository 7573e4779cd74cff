import { DataType } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import type { Dim } from '../types.js';
import type { OutSpec, RuleContext, RuleTable } from './context.js';
import { productDims } from './dims.js';
import { MAX_TRACKED, tensorValues } from './fold.js';

/**
 * Ops that create tensors rather than transform them: constants, shape queries (whose outputs carry
 * their values, possibly symbolic, so later shape arithmetic can fold), ConstantOfShape, Range and the
 * random generators.
 */

const shapeOp = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const s = ctx.shape(0);
  if (!s) return [{ elemType: DataType.INT64, shape: [null] }];
  const r = s.length;
  const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
  const start = ctx.opset >= 15 ? clamp(ctx.node.attrInt('start', 0)) : 0;
  const end = ctx.opset >= 15 ? clamp(ctx.node.attrInt('end', r)) : r;
  const values = s.slice(start, Math.max(start, end));
  return [{ elemType: DataType.INT64, shape: [values.length], values }];
};

const constantTensor = (t: Tensor): OutSpec => ({ elemType: t.dtype, shape: [...t.dims], values: tensorValues(t) });

const constant = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const n = ctx.node;
  const v = n.attr('value');
  if (v && typeof v === 'object' && 'dims' in v && 'dtype' in v) return [constantTensor(v as Tensor)];
  const sparse = n.attr('sparse_value') as { values: Tensor; dims: number[] } | undefined;
  if (sparse && typeof sparse === 'object' && 'dims' in sparse) return [{ elemType: sparse.values.dtype, shape: [...sparse.dims] }];
  if (n.attributes.has('value_int')) return [{ elemType: DataType.INT64, shape: [], values: [n.attrInt('value_int', 0)] }];
  const vi = n.attrInts('value_ints');
  if (vi) return [{ elemType: DataType.INT64, shape: [vi.length], values: vi }];
  if (n.attributes.has('value_float')) return [{ elemType: DataType.FLOAT, shape: [], values: [n.attrFloat('value_float', 0)] }];
  const vf = n.attr('value_floats');
  if (Array.isArray(vf)) return [{ elemType: DataType.FLOAT, shape: [vf.length], values: (vf as number[]).map(Number) }];
  if (n.attributes.has('value_string')) return [{ elemType: DataType.STRING, shape: [] }];
  const vs = n.attr('value_strings');
  if (Array.isArray(vs)) return [{ elemType: DataType.STRING, shape: [vs.length] }];
  return [undefined];
};

const constantOfShape = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const t = ctx.node.attr('value') as Tensor | undefined;
  const elemType = t && typeof t === 'object' && 'dtype' in t ? t.dtype : DataType.FLOAT;
  const dims = ctx.values(0);
  if (!dims) {
    const len = ctx.shape(0)?.[0];
    return [{ elemType, shape: typeof len === 'number' ? new Array<Dim>(len).fill(null) : undefined }];
  }
  const shape = dims.map((d) => (typeof d === 'number' && d < 0 ? ctx.fail(`negative dimension ${d} in shape`) : d));
  const numel = productDims(shape);
  const fill = t && typeof t === 'object' && 'dtype' in t ? (tensorValues(t)?.[0] ?? null) : 0;
  const values = typeof numel === 'number' && numel <= MAX_TRACKED ? new Array<Dim>(numel).fill(fill) : undefined;
  return [{ elemType, shape, values }];
};

const range = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const [start, limit, delta] = [ctx.values(0)?.[0], ctx.values(1)?.[0], ctx.values(2)?.[0]];
  const elemType = ctx.elem(0);
  if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number' && delta !== 0) {
    const n = Math.max(Math.ceil((limit - start) / delta), 0);
    const values = n <= MAX_TRACKED ? Array.from({ length: n }, (_, i) => start + i * delta) : undefined;
    return [{ elemType, shape: [n], values }];
  }
  // range(0, seq) over a symbolic limit keeps the symbol.
  if (start === 0 && delta === 1 && typeof limit === 'string') return [{ elemType, shape: [limit] }];
  return [{ elemType, shape: [null] }];
};

export const generatorRules: RuleTable = {
  Shape: shapeOp,
  Size: (ctx) => {
    const s = ctx.shape(0);
    const p = s ? productDims(s) : null;
    return [{ elemType: DataType.INT64, shape: [], values: [p] }];
  },
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Range: range,
  RandomNormal: (ctx) => [{ elemType: ctx.node.attrInt('dtype', DataType.FLOAT), shape: ctx.node.attrInts('shape') }],
  RandomUniform: (ctx) => [{ elemType: ctx.node.attrInt('dtype', DataType.FLOAT), shape: ctx.node.attrInts('shape') }],
};
