import { FrugalError } from '../../errors.js';
import type { Node } from '../node.js';
import { type Dim, elemTypeOf, type Shape, shapeOf, type ValueType } from '../types.js';

/**
 * What a rule says about one node output. `values` is the flattened content of a small tensor when the
 * rule could compute it (shape arithmetic: Shape → Gather → Concat → Reshape); entries may be symbolic
 * dims or null where a single element is unknown.
 */
export interface OutSpec {
  elemType?: number;
  shape?: Shape;
  values?: Dim[];
  /** A complete non-tensor type (sequence, optional...), used as is. */
  type?: ValueType;
}

/** What a shape rule sees of a node. */
export interface RuleContext {
  readonly node: Node;
  /** Opset version of the node's domain. */
  readonly opset: number;
  /** Number of inputs present (trailing omitted ones not counted). */
  readonly inputCount: number;
  has(i: number): boolean;
  type(i: number): ValueType | undefined;
  elem(i: number): number | undefined;
  shape(i: number): Shape | undefined;
  /** Known flattened contents of input i (small integer/float tensors), else undefined. */
  values(i: number): Dim[] | undefined;
  /** Known contents of input i as numbers (integers or floats), undefined unless every element is known. */
  nums(i: number): number[] | undefined;
  /** Infers a subgraph (If/Loop/Scan body) in place, after the rule has typed its formal inputs. */
  inferSubgraph(attrName: string): void;
  /** Throws an E_SHAPE error naming the node. */
  fail(message: string): never;
  warn(message: string): void;
}

export type ShapeRule = (ctx: RuleContext) => Array<OutSpec | undefined>;
export type RuleTable = Record<string, ShapeRule>;

export function shapeError(node: Node, message: string): FrugalError {
  return new FrugalError('E_SHAPE', `${node.describe()}: ${message}`);
}

/** Element type and shape of a value type, for rules that copy an input's type. */
export function specOf(t: ValueType | undefined): OutSpec {
  return { elemType: elemTypeOf(t), shape: shapeOf(t) };
}

/** Attribute or input: opsets moved many attributes (axes, pads, split...) to inputs. */
export function attrOrInput(ctx: RuleContext, attr: string, input: number, movedAt: number): number[] | undefined | 'unknown' {
  if (ctx.opset < movedAt) return ctx.node.attrInts(attr);
  if (!ctx.has(input)) return undefined;
  return ctx.nums(input) ?? 'unknown';
}
