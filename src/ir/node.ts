import { FrugalError } from '../errors.js';
import type { Graph } from './graph.js';
import { Tensor } from './tensor.js';
import { AttributeType, type ValueType } from './types.js';

/** A sparse tensor: COO indices and values, as SparseTensorProto stores them. */
export interface SparseTensor {
  values: Tensor;
  indices: Tensor;
  dims: number[];
}

/** Fields the IR carries for fidelity but does not interpret (doc strings, metadata, unknown fields). */
export interface Extras {
  docString?: string;
  metadataProps?: Array<[string, string]>;
  /** Opaque data the codec round-trips (unknown protobuf fields, device configurations...). */
  codec?: Record<string, unknown>;
}

/** One use of a value: `node.inputs[index] === value`. */
export interface Use {
  node: Node;
  index: number;
}

/**
 * A value: produced by at most one node output, or a graph input, or an initializer (constant), and
 * used by any number of node inputs, in this graph or in nested subgraphs. Uses are kept up to date by
 * `Node.setInput`, so `replaceAllUsesWith` and safe removal never hand-edit input arrays.
 */
export class Value {
  name: string;
  type: ValueType | undefined;
  /** The graph (scope) that defines this value. */
  graph: Graph;
  producer: Node | undefined = undefined;
  producerIndex = -1;
  /** The constant data when this value is an initializer. */
  initializer: Tensor | undefined = undefined;
  /** The sparse constant when this value is a sparse initializer. */
  sparseInitializer: SparseTensor | undefined = undefined;
  readonly uses: Use[] = [];
  extras: Extras = {};
  /** True when the source model listed this value in `value_info` (kept so re-encoding keeps it). */
  hasValueInfo = false;

  constructor(graph: Graph, name: string, type?: ValueType) {
    this.graph = graph;
    this.name = name;
    this.type = type;
  }

  /** True for initializers (dense or sparse). */
  get isConstant(): boolean {
    return this.initializer !== undefined || this.sparseInitializer !== undefined;
  }

  get isGraphInput(): boolean {
    return this.graph.inputs.includes(this);
  }

  get isGraphOutput(): boolean {
    return this.graph.outputs.includes(this);
  }

  /** Nodes that read this value (each once, in use order). */
  consumers(): Node[] {
    return [...new Set(this.uses.map((u) => u.node))];
  }

  /**
   * Makes every use of this value (node inputs, in this graph and its subgraphs) read `other` instead.
   * When `replaceGraphOutputs` is set, graph outputs are redirected too (renaming `other` to keep the
   * output name stable for the model's callers).
   */
  replaceAllUsesWith(other: Value, replaceGraphOutputs = false): void {
    if (other === this) return;
    for (const u of [...this.uses]) u.node.setInput(u.index, other);
    if (replaceGraphOutputs) {
      const outs = this.graph.outputs;
      for (let i = 0; i < outs.length; i++) if (outs[i] === this) outs[i] = other;
    }
  }

  toString(): string {
    return `Value(${this.name})`;
  }
}

export type AttributeValue =
  | number
  | bigint
  | string
  | Uint8Array
  | Tensor
  | Graph
  | SparseTensor
  | ValueType
  | Array<number | bigint>
  | Array<string | Uint8Array>
  | Tensor[]
  | Graph[]
  | SparseTensor[]
  | ValueType[];

/**
 * A node attribute. INT values are numbers, or bigints where the value is outside the safe integer
 * range (INT64_MAX in Slice ends, for example) so they survive a round trip. STRING values are JS
 * strings when valid UTF-8, else raw bytes. `refAttrName` marks a reference to an attribute of the
 * enclosing function.
 */
export interface Attribute {
  name: string;
  type: number;
  value: AttributeValue | undefined;
  refAttrName?: string;
  docString?: string;
  codec?: Record<string, unknown>;
}

/** An attribute value with its ONNX type spelled out (see `typed`). */
export class TypedAttribute {
  constructor(
    readonly type: number,
    readonly value: AttributeValue,
  ) {}
}

/** `typed(AttributeType.FLOAT, 1)`: an attribute whose type cannot be inferred from the JS value. */
export function typed(type: number, value: AttributeValue): TypedAttribute {
  return new TypedAttribute(type, value);
}

/** Shorthand for FLOAT and FLOATS attributes. */
export const float = (v: number): TypedAttribute => typed(AttributeType.FLOAT, v);
export const floats = (v: number[]): TypedAttribute => typed(AttributeType.FLOATS, v);
export const ints = (v: Array<number | bigint>): TypedAttribute => typed(AttributeType.INTS, v);

export interface NodeInit {
  opType: string;
  domain?: string;
  name?: string;
  inputs?: Array<Value | null>;
  outputs?: Array<Value | null>;
  /** Attributes; wrap a value in `typed(type, v)` where the type cannot be inferred (e.g. FLOAT 1.0). */
  attributes?: Attribute[] | Record<string, AttributeValue | TypedAttribute>;
  overload?: string;
}

/**
 * An operator application. `inputs[i] === null` is an omitted optional input (empty name in ONNX);
 * likewise for outputs. Subgraphs hang off GRAPH/GRAPHS attributes.
 */
export class Node {
  opType: string;
  domain: string;
  name: string;
  overload: string | undefined;
  graph: Graph | undefined = undefined;
  readonly attributes = new Map<string, Attribute>();
  extras: Extras = {};
  private ins: Array<Value | null> = [];
  private outs: Array<Value | null> = [];

  constructor(init: NodeInit) {
    this.opType = init.opType;
    this.domain = init.domain ?? '';
    this.name = init.name ?? '';
    this.overload = init.overload;
    for (const v of init.inputs ?? []) this.appendInput(v);
    for (const v of init.outputs ?? []) this.appendOutput(v);
    const attrs = init.attributes;
    if (Array.isArray(attrs)) for (const a of attrs) this.attributes.set(a.name, a);
    else if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v instanceof TypedAttribute) this.setAttribute(k, v.value, v.type);
        else this.setAttribute(k, v);
      }
    }
  }

  get inputs(): ReadonlyArray<Value | null> {
    return this.ins;
  }

  get outputs(): ReadonlyArray<Value | null> {
    return this.outs;
  }

  /** `domain::opType` for non-default domains, else `opType`. */
  get qualifiedOp(): string {
    return this.domain && this.domain !== 'ai.onnx' ? `${this.domain}::${this.opType}` : this.opType;
  }

  /** A short description for error messages: `Conv 'conv1'`. */
  describe(): string {
    return `${this.qualifiedOp} node${this.name ? ` '${this.name}'` : ''}`;
  }

  setInput(index: number, value: Value | null): void {
    if (index < 0 || index > this.ins.length) throw new FrugalError('E_INVALID_MODEL', `${this.describe()}: input index ${index} out of range`);
    const old = this.ins[index];
    if (old) {
      const k = old.uses.findIndex((u) => u.node === this && u.index === index);
      if (k >= 0) old.uses.splice(k, 1);
    }
    this.ins[index] = value;
    if (value) value.uses.push({ node: this, index });
  }

  appendInput(value: Value | null): void {
    this.setInput(this.ins.length, value);
  }

  /** Removes trailing inputs from `count` on, detaching their uses. */
  truncateInputs(count: number): void {
    for (let i = this.ins.length - 1; i >= count; i--) {
      this.setInput(i, null);
      this.ins.pop();
    }
  }

  setOutput(index: number, value: Value | null): void {
    const old = this.outs[index];
    if (old && old.producer === this) {
      old.producer = undefined;
      old.producerIndex = -1;
    }
    if (value) {
      if (value.producer && value.producer !== this) {
        throw new FrugalError('E_INVALID_MODEL', `value '${value.name}' is already produced by ${value.producer.describe()}; cannot also be output of ${this.describe()}`);
      }
      value.producer = this;
      value.producerIndex = index;
    }
    this.outs[index] = value;
  }

  appendOutput(value: Value | null): void {
    this.setOutput(this.outs.length, value);
  }

  /** Detaches this node from every input (their use lists shrink). Outputs keep their producer link. */
  detachInputs(): void {
    for (let i = 0; i < this.ins.length; i++) this.setInput(i, null);
  }

  setAttribute(name: string, value: AttributeValue, type?: number): void {
    this.attributes.set(name, { name, type: type ?? inferAttributeType(value, name), value });
  }

  attr(name: string): AttributeValue | undefined {
    return this.attributes.get(name)?.value;
  }

  /** INT attribute as a number (bigints clamp to ±Number.MAX_SAFE_INTEGER), or `fallback`. */
  attrInt(name: string, fallback: number): number;
  attrInt(name: string): number | undefined;
  attrInt(name: string, fallback?: number): number | undefined {
    const v = this.attr(name);
    if (v === undefined) return fallback;
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return clampBig(v);
    return fallback;
  }

  attrFloat(name: string, fallback: number): number {
    const v = this.attr(name);
    return typeof v === 'number' ? v : fallback;
  }

  /** INTS attribute as numbers (bigints clamped), or `fallback`. */
  attrInts(name: string): number[] | undefined {
    const v = this.attr(name);
    if (!Array.isArray(v)) return undefined;
    return (v as Array<number | bigint>).map((x) => (typeof x === 'bigint' ? clampBig(x) : x));
  }

  attrString(name: string, fallback: string): string {
    const v = this.attr(name);
    if (typeof v === 'string') return v;
    if (v instanceof Uint8Array) return new TextDecoder().decode(v);
    return fallback;
  }

  /** Subgraphs held by GRAPH and GRAPHS attributes, in attribute order. */
  subgraphs(): Graph[] {
    const out: Graph[] = [];
    for (const a of this.attributes.values()) {
      if (a.type === AttributeType.GRAPH && a.value) out.push(a.value as Graph);
      else if (a.type === AttributeType.GRAPHS && Array.isArray(a.value)) out.push(...(a.value as Graph[]));
    }
    return out;
  }

  toString(): string {
    const ins = this.ins.map((v) => v?.name ?? '').join(', ');
    const outs = this.outs.map((v) => v?.name ?? '').join(', ');
    return `${outs} = ${this.qualifiedOp}(${ins})`;
  }
}

/** Graph is detected structurally: graph.ts imports this module, so it cannot be imported here. */
function isGraph(v: unknown): v is Graph {
  return typeof v === 'object' && v !== null && 'nodes' in v && 'values' in v && 'initializerNames' in v;
}

function clampBig(v: bigint): number {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  return Number(v > max ? max : v < -max ? -max : v);
}

function inferAttributeType(value: AttributeValue, name: string): number {
  if (value instanceof Tensor) return AttributeType.TENSOR;
  if (isGraph(value)) return AttributeType.GRAPH;
  if (typeof value === 'number') return Number.isInteger(value) && !Object.is(value, -0) ? AttributeType.INT : AttributeType.FLOAT;
  if (typeof value === 'bigint') return AttributeType.INT;
  if (typeof value === 'string' || value instanceof Uint8Array) return AttributeType.STRING;
  if (Array.isArray(value)) {
    const first = value[0];
    if (first === undefined) throw new FrugalError('E_USAGE', `attribute '${name}': cannot infer the type of an empty list; pass the type explicitly`);
    if (typeof first === 'number' || typeof first === 'bigint') {
      return (value as Array<number | bigint>).every((x) => typeof x === 'bigint' || Number.isInteger(x)) ? AttributeType.INTS : AttributeType.FLOATS;
    }
    if (typeof first === 'string' || first instanceof Uint8Array) return AttributeType.STRINGS;
    if (first instanceof Tensor) return AttributeType.TENSORS;
    if (isGraph(first)) return AttributeType.GRAPHS;
  }
  throw new FrugalError('E_USAGE', `attribute '${name}': pass the attribute type explicitly for this value`);
}
