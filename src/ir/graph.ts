import { FrugalError } from '../errors.js';
import { type Extras, Node, type NodeInit, type SparseTensor, Value } from './node.js';
import type { Tensor } from './tensor.js';
import type { ValueType } from './types.js';

/**
 * A graph: an ordered node list plus a symbol table of the values it defines. Subgraphs (If/Loop/Scan
 * bodies) have `parent` set and may read values of enclosing graphs by reference; such reads appear in
 * the outer value's `uses`. Invariants (checked by `verify`): every value has at most one producer, node
 * order is topological, names are unique across a graph and the scopes enclosing it.
 */
export class Graph {
  name: string;
  /** The enclosing graph for subgraphs; undefined for a model's main graph or a function body. */
  parent: Graph | undefined;
  /** The node holding this graph as an attribute, for subgraphs. */
  ownerNode: Node | undefined;
  readonly nodes: Node[] = [];
  inputs: Value[] = [];
  outputs: Value[] = [];
  /** Every value defined in this scope, by name. */
  readonly values = new Map<string, Value>();
  /** Names of initializers, in file order (the Values hold the tensors). */
  readonly initializerNames: string[] = [];
  readonly sparseInitializerNames: string[] = [];
  extras: Extras = {};
  /** TensorAnnotation entries: tensor name → (key → quantization parameter tensor name). */
  quantizationAnnotations: Array<{ tensorName: string; params: Array<[string, string]> }> = [];
  private nameCounter = 0;
  /** Node names in use or handed out by `uniqueNodeName` (built on its first call). */
  private nodeNames: Set<string> | undefined;

  constructor(name = '', parent?: Graph) {
    this.name = name;
    this.parent = parent;
    this.ownerNode = undefined;
  }

  /** The value named `name` in this scope or an enclosing one. */
  lookup(name: string): Value | undefined {
    for (let g: Graph | undefined = this; g; g = g.parent) {
      const v = g.values.get(name);
      if (v) return v;
    }
    return undefined;
  }

  /**
   * A node name not used in this graph: `base`, else `base_1`, `base_2`... (ORT rejects duplicate node
   * names). Names handed out, and those of nodes inserted since the first call, stay reserved even
   * after their node is removed, which can only skip a name, never repeat one.
   */
  uniqueNodeName(base: string): string {
    const used = (this.nodeNames ??= new Set(this.nodes.map((n) => n.name)));
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  }

  /** A name not used in this scope or any enclosing one: `prefix`, else `prefix_1`, `prefix_2`... */
  uniqueName(prefix: string): string {
    if (!this.lookup(prefix) && !this.nameInSubgraphs(prefix)) return prefix;
    for (;;) {
      const n = `${prefix}_${++this.nameCounter}`;
      if (!this.lookup(n) && !this.nameInSubgraphs(n)) return n;
    }
  }

  private nameInSubgraphs(name: string): boolean {
    for (const n of this.nodes) for (const g of n.subgraphs()) if (g.values.has(name) || g.nameInSubgraphs(name)) return true;
    return false;
  }

  /**
   * Defines a new value in this scope. With `exactName`, fails if the name is taken (models decode with
   * their own names); otherwise a unique variant of `name` is chosen.
   */
  createValue(name: string, type?: ValueType, exactName = false): Value {
    if (exactName) {
      if (this.values.has(name)) throw new FrugalError('E_INVALID_MODEL', `graph '${this.name}': value '${name}' is defined twice`);
    } else {
      name = this.uniqueName(name || 'v');
    }
    const v = new Value(this, name, type);
    this.values.set(name, v);
    return v;
  }

  /** Renames a value, keeping the symbol table consistent. */
  renameValue(v: Value, newName: string): void {
    if (v.name === newName) return;
    if (this.lookup(newName)) throw new FrugalError('E_INVALID_MODEL', `cannot rename '${v.name}' to '${newName}': name taken`);
    v.graph.values.delete(v.name);
    v.name = newName;
    v.graph.values.set(newName, v);
  }

  addInput(name: string, type: ValueType): Value {
    const v = this.createValue(name, type, true);
    this.inputs.push(v);
    return v;
  }

  /** Adds a constant (initializer) value; the tensor takes the value's name. */
  addInitializer(name: string, tensor: Tensor, exactName = false): Value {
    const v = this.createValue(name, { kind: 'tensor', elemType: tensor.dtype, shape: [...tensor.dims] }, exactName);
    tensor.name = v.name;
    v.initializer = tensor;
    this.initializerNames.push(v.name);
    return v;
  }

  addSparseInitializer(name: string, sparse: SparseTensor): Value {
    const v = this.createValue(name, { kind: 'sparse_tensor', elemType: sparse.values.dtype, shape: [...sparse.dims] }, true);
    v.sparseInitializer = sparse;
    this.sparseInitializerNames.push(v.name);
    return v;
  }

  /** Initializer values in file order. */
  initializers(): Value[] {
    return this.initializerNames.map((n) => this.values.get(n)!).filter((v) => v && v.initializer);
  }

  /** Turns an initializer into a plain value (or deletes it when unused). */
  removeInitializer(v: Value): void {
    const i = this.initializerNames.indexOf(v.name);
    if (i >= 0) this.initializerNames.splice(i, 1);
    v.initializer = undefined;
    if (v.uses.length === 0 && !v.isGraphInput && !v.isGraphOutput) this.values.delete(v.name);
  }

  /**
   * Appends (or inserts before/after an anchor) a node. `outputs` given as a number creates that many
   * fresh values named after the node.
   */
  addNode(init: NodeInit & { outputCount?: number; outputNames?: string[] }, where?: { before?: Node; after?: Node }): Node {
    const node = new Node({ ...init, outputs: init.outputs ?? [] });
    if (!init.outputs) {
      const names = init.outputNames ?? Array.from({ length: init.outputCount ?? 1 }, (_, i) => `${init.name || init.opType}_out${i === 0 ? '' : i}`);
      for (const n of names) node.appendOutput(this.createValue(n));
    }
    this.insertNode(node, where);
    return node;
  }

  /** Places an existing node in this graph. */
  insertNode(node: Node, where?: { before?: Node; after?: Node }): void {
    if (node.graph && node.graph !== this) throw new FrugalError('E_INVALID_MODEL', `${node.describe()} already belongs to graph '${node.graph.name}'`);
    node.graph = this;
    this.nodeNames?.add(node.name);
    for (const o of node.outputs) if (o && !this.values.has(o.name)) this.values.set(o.name, o);
    if (where?.before) this.nodes.splice(this.indexOf(where.before), 0, node);
    else if (where?.after) this.nodes.splice(this.indexOf(where.after) + 1, 0, node);
    else this.nodes.push(node);
  }

  private indexOf(node: Node): number {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new FrugalError('E_INVALID_MODEL', `${node.describe()} is not in graph '${this.name}'`);
    return i;
  }

  /**
   * Removes a node. Unless `force`, fails when an output is still used or is a graph output, naming
   * the user. Its input uses are detached and its outputs leave the symbol table.
   */
  removeNode(node: Node, force = false): void {
    if (!force) {
      for (const o of node.outputs) {
        if (!o) continue;
        if (o.uses.length) throw new FrugalError('E_INVALID_MODEL', `cannot remove ${node.describe()}: output '${o.name}' is still used by ${o.uses[0]!.node.describe()}`);
        if (o.isGraphOutput) throw new FrugalError('E_INVALID_MODEL', `cannot remove ${node.describe()}: output '${o.name}' is a graph output`);
      }
    }
    const i = this.indexOf(node);
    this.nodes.splice(i, 1);
    node.detachInputs();
    for (const o of node.outputs) {
      if (!o) continue;
      o.producer = undefined;
      if (o.uses.length === 0 && !o.isGraphOutput) this.values.delete(o.name);
    }
    node.graph = undefined;
  }

  /** This graph and every subgraph below it, depth-first, parents first. */
  *allGraphs(): Generator<Graph> {
    yield this;
    for (const n of this.nodes) for (const g of n.subgraphs()) yield* g.allGraphs();
  }

  /** Every node in this graph and its subgraphs. */
  *allNodes(): Generator<Node> {
    for (const g of this.allGraphs()) yield* g.nodes;
  }

  toString(): string {
    return `Graph(${this.name}: ${this.nodes.length} nodes)`;
  }
}
