import { DataType } from '../dtype.js';
import type { Shape } from '../types.js';
import { type OutSpec, type RuleContext, type RuleTable, type ShapeRule, specOf } from './context.js';
import { broadcastShapes } from './dims.js';
import { binaryValueFn, broadcastMap, castValue, unaryValueFn } from './fold.js';

/**
 * Elementwise operators: unary ops keep their input's type; binary and variadic ops broadcast
 * (numpy rules, opset 7 on; before that B was broadcast onto A's shape, so the output is A's shape).
 * Small integer tensors are folded so that shape arithmetic keeps its values.
 */

/** Output is input 0's type; values follow input 0 through `fn` where one exists. */
function unary(elemType?: number): ShapeRule {
  return (ctx) => {
    const out: OutSpec = specOf(ctx.type(0));
    if (elemType !== undefined) out.elemType = elemType;
    const fn = unaryValueFn(ctx.node.opType);
    const v = ctx.values(0);
    if (fn && v) out.values = v.map(fn);
    return [out];
  };
}

function broadcastOf(ctx: RuleContext, inputs: number[]): Shape | undefined {
  if (ctx.opset < 7 && ctx.node.opType !== 'Where' && inputs.length === 2) return ctx.shape(inputs[0]!);
  const r = broadcastShapes(inputs.map((i) => ctx.shape(i)));
  if (typeof r === 'string') ctx.fail(r);
  return r;
}

/** Broadcasting op over inputs; `typeFrom` picks the output element type (input index) unless fixed. */
function broadcast(fixedElem?: number, typeFrom = 0): ShapeRule {
  return (ctx) => {
    const inputs = Array.from({ length: ctx.inputCount }, (_, i) => i).filter((i) => ctx.has(i));
    const shape = broadcastOf(ctx, inputs);
    const elemType = fixedElem ?? ctx.elem(typeFrom) ?? inputs.map((i) => ctx.elem(i)).find((t) => t !== undefined && ctx.node.opType !== 'Where');
    const out: OutSpec = { elemType, shape };
    const fn = binaryValueFn(ctx.node.opType, ctx.elem(typeFrom));
    if (fn) {
      out.values = broadcastMap(
        shape,
        inputs.map((i) => ctx.shape(i)),
        inputs.map((i) => ctx.values(i)),
        fn,
      );
    }
    return [out];
  };
}

const UNARY_SAME = [
  'Abs', 'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'BitwiseNot', 'Ceil', 'Celu', 'Cos', 'Cosh', 'Elu', 'Erf', 'Exp', 'Floor',
  'Gelu', 'HardSigmoid', 'HardSwish', 'Hardmax', 'Identity', 'LeakyRelu', 'Log', 'LogSoftmax', 'LpNormalization',
  'MeanVarianceNormalization', 'Mish', 'Neg', 'Not', 'Reciprocal', 'Relu', 'Round', 'Selu', 'Shrink', 'Sigmoid', 'Sign', 'Sin',
  'Sinh', 'Softmax', 'Softplus', 'Softsign', 'Sqrt', 'Tan', 'Tanh', 'ThresholdedRelu', 'ImageScaler', 'LRN', 'Clip',
  'CumSum', 'Trilu', 'ScatterND', 'ScatterElements', 'Scatter', 'ReverseSequence', 'InstanceNormalization', 'GroupNormalization',
];

const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'PRelu', 'Max', 'Min', 'Sum', 'Mean'];
const COMPARE = ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'];

export const elementwiseRules: RuleTable = {
  ...Object.fromEntries(UNARY_SAME.map((op) => [op, unary()])),
  ...Object.fromEntries(BINARY.map((op) => [op, broadcast()])),
  ...Object.fromEntries(COMPARE.map((op) => [op, broadcast(DataType.BOOL)])),
  IsNaN: unary(DataType.BOOL),
  IsInf: unary(DataType.BOOL),
  Where: broadcast(undefined, 1),
  Cast: (ctx) => {
    const to = ctx.node.attrInt('to');
    const v = ctx.values(0);
    return [{ elemType: to, shape: ctx.shape(0), values: v && to !== undefined ? v.map((x) => castValue(x, to)) : undefined }];
  },
  CastLike: (ctx) => {
    const to = ctx.elem(1);
    const v = ctx.values(0);
    return [{ elemType: to, shape: ctx.shape(0), values: v && to !== undefined ? v.map((x) => castValue(x, to)) : undefined }];
  },
  /** Dropout: output, and (opset 7+) a bool mask of the same shape (float mask in opset 1-6). */
  Dropout: (ctx) => {
    const s = specOf(ctx.type(0));
    return [{ ...s, values: ctx.values(0) }, { elemType: ctx.opset >= 10 ? DataType.BOOL : s.elemType, shape: s.shape }];
  },
  RandomNormalLike: (ctx) => [{ elemType: ctx.node.attrInt('dtype') ?? ctx.elem(0), shape: ctx.shape(0) }],
  RandomUniformLike: (ctx) => [{ elemType: ctx.node.attrInt('dtype') ?? ctx.elem(0), shape: ctx.shape(0) }],
  EyeLike: (ctx) => [{ elemType: ctx.node.attrInt('dtype') ?? ctx.elem(0), shape: ctx.shape(0) }],
};
