import { FrugalError } from '../../errors.js';
import { GraphBuilder } from '../../ir/builder.js';
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import type { AttributeValue, Node, TypedAttribute, Value } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import { elemTypeOf, formatShape, type Shape, shapeOf } from '../../ir/types.js';
import { constTensor } from './rules/helpers.js';

/**
 * What a gradient rule sees: the forward node, a builder that appends backward nodes to the training
 * graph, the inferred shapes of forward values, and helpers for the patterns every rule needs
 * (undoing broadcasting, constants, reading constant inputs).
 *
 * Invariant: backward nodes only read forward values and earlier backward values, and are appended
 * after every forward node, so the training graph stays topologically sorted.
 */
export class GradContext {
  readonly b: GraphBuilder;
  readonly graph: Graph;
  /** Default-domain opset of the model (autodiff requires ≥ 13: axes as inputs). */
  readonly opset: number;
  /** The forward node whose backward nodes are being emitted: names them, and `fail` names it. */
  private current: Node | undefined;
  private constCache = new Map<string, Value>();

  constructor(model: Model) {
    this.graph = model.graph;
    this.b = new GraphBuilder(model.graph);
    this.opset = model.opset;
  }

  /** Runs `emit` with backward nodes named after (and errors naming) the forward node `node`. */
  within<T>(node: Node, emit: () => T): T {
    this.current = node;
    try {
      return emit();
    } finally {
      this.current = undefined;
    }
  }

  /** A new initializer holding `t`, named after the forward node. */
  constant(t: Tensor): Value {
    return this.graph.addInitializer(this.graph.uniqueName(`grad/${this.current?.name || 'window'}/const`), t);
  }

  /** Appends a backward node with one output, named after the forward node. */
  op(opType: string, inputs: Array<Value | null>, attrs?: Record<string, AttributeValue | TypedAttribute>): Value {
    const base = this.current ? `grad/${this.current.name || this.current.opType}/${opType}` : `grad/${opType}`;
    return this.b.op(opType, inputs, attrs, { name: this.graph.uniqueNodeName(base), outputNames: [this.graph.uniqueName(`${base}_out`)] });
  }

  /** Appends a backward node with several outputs. */
  ops(opType: string, inputs: Array<Value | null>, count: number, attrs?: Record<string, AttributeValue | TypedAttribute>): Value[] {
    const base = this.current ? `grad/${this.current.name || this.current.opType}/${opType}` : `grad/${opType}`;
    const names = Array.from({ length: count }, (_, i) => this.graph.uniqueName(`${base}_out${i}`));
    return this.b.ops(opType, inputs, count, attrs, { name: this.graph.uniqueNodeName(base), outputNames: names });
  }

  /** Static shape of a forward value (dims may be symbolic); throws when the rank is unknown. */
  shape(v: Value): Shape {
    const s = shapeOf(v.type) ?? (v.initializer ? [...v.initializer.dims] : undefined);
    if (!s) throw this.fail(`the shape of '${v.name}' is unknown; give the model's inputs concrete or symbolic shapes`);
    return s;
  }

  rank(v: Value): number {
    return this.shape(v).length;
  }

  /** Element type of a forward value (FLOAT when unknown and it is an initializer of another type). */
  elemType(v: Value): number {
    const t = elemTypeOf(v.type) ?? v.initializer?.dtype;
    if (t === undefined) throw this.fail(`the element type of '${v.name}' is unknown`);
    return t;
  }

  /** A cached scalar constant of the given float type. */
  scalar(value: number, elemType: number = DataType.FLOAT): Value {
    const key = `s:${elemType}:${value}`;
    let v = this.constCache.get(key);
    if (!v) {
      const t = elemType === DataType.DOUBLE ? Tensor.fromArray(elemType, [], [value]) : Tensor.fromArray(DataType.FLOAT, [], [value]);
      v = this.graph.addInitializer(this.graph.uniqueName(`grad/const_${String(value).replace(/[^\w.-]/g, '_')}`), t);
      if (elemType !== DataType.FLOAT && elemType !== DataType.DOUBLE) v = this.op('Cast', [v], { to: elemType });
      this.constCache.set(key, v);
    }
    return v;
  }

  /** A cached int64 constant (axes, shapes, perms). */
  ints(values: number[], dims: number[] = [values.length]): Value {
    const key = `i:${dims.join('x')}:${values.join(',')}`;
    let v = this.constCache.get(key);
    if (!v) {
      v = this.graph.addInitializer(this.graph.uniqueName('grad/ints'), Tensor.fromArray(DataType.INT64, dims, values.map((x) => BigInt(x)) as unknown as number[]));
      this.constCache.set(key, v);
    }
    return v;
  }

  /**
   * The constant integer content of a forward input (an initializer or a Constant node's value), or
   * undefined when it is computed at run time.
   */
  constInts(v: Value | null | undefined): number[] | undefined {
    const t = constTensor(v);
    if (!t) return undefined;
    if (t.dtype !== DataType.INT64 && t.dtype !== DataType.INT32) return undefined;
    return Array.from(t.toArray() as ArrayLike<number | bigint>, Number);
  }

  /**
   * Undoes broadcasting: sums `grad` (shaped like forward value `out`) over the axes along which
   * `input` was broadcast, then reshapes to `input`'s run-time shape. Shapes are read from inference;
   * an input dim of 1 facing a different output dim is a broadcast axis.
   */
  unbroadcast(grad: Value, out: Value, input: Value): Value {
    const os = this.shape(out);
    const is = this.shape(input);
    if (is.length === os.length && is.every((d, i) => d === os[i] && d !== null)) return grad;
    const lead = os.length - is.length;
    if (lead < 0) throw this.fail(`input '${input.name}' ${formatShape(is)} has higher rank than output ${formatShape(os)}`);
    const axes: number[] = [];
    for (let i = 0; i < lead; i++) axes.push(i);
    for (let i = 0; i < is.length; i++) {
      const di = is[i];
      const dout = os[i + lead];
      if (di === 1 && dout !== 1) axes.push(i + lead);
      // An unknown input dim may or may not have been broadcast: decide at run time.
      else if (di === null && dout !== 1) return this.unbroadcastAtRunTime(grad, out, input, lead);
    }
    if (!axes.length) return grad;
    // Only missing leading axes (a bias [C] added to [N, C]): dropping them leaves the input's shape.
    if (axes.every((a) => a < lead)) return this.op('ReduceSum', [grad, this.ints(axes)], { keepdims: 0 });
    const summed = this.op('ReduceSum', [grad, this.ints(axes)], { keepdims: 1 });
    // A static input shape needs no Shape node (fewer kernels per step in small models).
    const target = is.every((d): d is number => d !== null) ? this.ints(is) : this.op('Shape', [input]);
    return this.op('Reshape', [summed, target]);
  }

  /**
   * `unbroadcast` when static shapes cannot tell: the summed axes are computed in the graph as the
   * positions where the (left-padded) input shape is 1 and the output's is not, then ReduceSum with
   * `noop_with_empty_axes` and a Reshape to the input's run-time shape.
   */
  private unbroadcastAtRunTime(grad: Value, out: Value, input: Value, lead: number): Value {
    const one = this.ints([1], []);
    let inShape = this.op('Shape', [input]);
    if (lead > 0) inShape = this.op('Concat', [this.ints(new Array(lead).fill(1)), inShape], { axis: 0 });
    const outShape = this.op('Shape', [out]);
    const mask = this.op('And', [this.op('Equal', [inShape, one]), this.op('Not', [this.op('Equal', [outShape, one])])]);
    const axes = this.op('Reshape', [this.op('NonZero', [mask]), this.ints([-1])]);
    const summed = this.op('ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 });
    return this.op('Reshape', [summed, this.op('Shape', [input])]);
  }

  /**
   * For MatMul operands: `grad` has the output's batch axes (rank `outRank`); sums the batch axes the
   * operand was broadcast along (missing leading axes, and size-1 batch axes) and reshapes to it.
   */
  unbroadcastMatmul(grad: Value, outRank: number, operand: Value): Value {
    const s = this.shape(operand);
    const lead = outRank - s.length;
    const axes: number[] = [];
    for (let i = 0; i < lead; i++) axes.push(i);
    for (let i = 0; i < s.length - 2; i++) if (s[i] === 1) axes.push(i + lead);
    if (!axes.length) return grad;
    return this.op('Reshape', [this.op('ReduceSum', [grad, this.ints(axes)], { keepdims: 1 }), this.op('Shape', [operand])]);
  }

  /** An E_UNSUPPORTED/E_SHAPE error naming the current node. */
  fail(message: string): FrugalError {
    return new FrugalError('E_UNSUPPORTED', `gradient of ${this.current ? this.current.describe() : 'graph'}: ${message}`);
  }
}
