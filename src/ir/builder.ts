import { Graph } from './graph.js';
import { Model } from './model.js';
import type { AttributeValue, Node, TypedAttribute, Value } from './node.js';
import { Tensor, type TypedArray } from './tensor.js';
import { type Shape, tensorType } from './types.js';

export interface OpOptions {
  /** Node name; defaults to a unique `opType_N`. */
  name?: string;
  domain?: string;
  /** Output value names (defaults derive from the node name). */
  outputNames?: string[];
}

/**
 * Writes graphs the way one writes code: `const y = b.op('Relu', [b.op('MatMul', [x, w])])`.
 * Values get unique names; nodes are appended in order, so a graph built this way is topologically
 * sorted. `build()` wraps the graph in a Model with the given opset imports.
 */
export class GraphBuilder {
  readonly graph: Graph;
  private counters = new Map<string, number>();

  constructor(graphOrName: Graph | string = 'main') {
    this.graph = typeof graphOrName === 'string' ? new Graph(graphOrName) : graphOrName;
  }

  /** Declares a graph input. */
  input(name: string, elemType: number, shape?: Shape): Value {
    return this.graph.addInput(name, tensorType(elemType, shape));
  }

  /** Adds a named constant (initializer). */
  initializer(name: string, tensor: Tensor): Value {
    return this.graph.addInitializer(name, tensor);
  }

  /** Adds a constant from a typed array (the array's memory is used directly). */
  constant(name: string, elemType: number, dims: readonly number[], data: TypedArray | number[]): Value {
    return this.graph.addInitializer(name, Tensor.fromArray(elemType, dims, data));
  }

  /** Appends a node with one output and returns that output. */
  op(opType: string, inputs: Array<Value | null>, attributes?: Record<string, AttributeValue | TypedAttribute>, opts: OpOptions = {}): Value {
    return this.node(opType, inputs, attributes, { ...opts, outputCount: 1 }).outputs[0]!;
  }

  /** Appends a node with `outputCount` outputs and returns them. */
  ops(opType: string, inputs: Array<Value | null>, outputCount: number, attributes?: Record<string, AttributeValue | TypedAttribute>, opts: OpOptions = {}): Value[] {
    return this.node(opType, inputs, attributes, { ...opts, outputCount }).outputs as Value[];
  }

  /** Appends a node and returns it. */
  node(opType: string, inputs: Array<Value | null>, attributes: Record<string, AttributeValue | TypedAttribute> | undefined, opts: OpOptions & { outputCount?: number }): Node {
    const name = opts.name ?? this.freshNodeName(opType);
    return this.graph.addNode({
      opType,
      domain: opts.domain,
      name,
      inputs,
      attributes,
      outputCount: opts.outputCount ?? 1,
      outputNames: opts.outputNames,
    });
  }

  /** Marks `v` as a graph output, renaming it to `name` when given, with its declared type. */
  output(v: Value, name?: string, elemType?: number, shape?: Shape): Value {
    if (name && v.name !== name) this.graph.renameValue(v, name);
    if (elemType !== undefined) v.type = tensorType(elemType, shape);
    this.graph.outputs.push(v);
    return v;
  }

  /** Wraps the graph in a Model. */
  build(opts: { opsetImports?: Record<string, number>; irVersion?: number; producerName?: string; producerVersion?: string } = {}): Model {
    return new Model(this.graph, {
      irVersion: opts.irVersion ?? 8,
      opsetImports: opts.opsetImports ?? { '': 17 },
      producerName: opts.producerName ?? 'frugal',
      producerVersion: opts.producerVersion,
    });
  }

  /** `opType_N` (N counting per op type), made unique among the graph's node names (ORT rejects duplicates). */
  private freshNodeName(opType: string): string {
    const n = (this.counters.get(opType) ?? 0) + 1;
    this.counters.set(opType, n);
    return this.graph.uniqueNodeName(`${opType}_${n}`);
  }
}
