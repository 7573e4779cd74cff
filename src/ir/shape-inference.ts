import { FrugalError, isFrugalError } from '../errors.js';
import type { Graph } from './graph.js';
import type { Model } from './model.js';
import type { Node, Value } from './node.js';
import { type OutSpec, type RuleContext, type RuleTable, shapeError, type ShapeRule } from './shape-rules/context.js';
import { controlFlowRules } from './shape-rules/control-flow.js';
import { canonicalDim } from './shape-rules/dims.js';
import { elementwiseRules } from './shape-rules/elementwise.js';
import { generatorRules } from './shape-rules/generators.js';
import { tensorValues } from './shape-rules/fold.js';
import { contribRules, nnRules } from './shape-rules/nn.js';
import { reduceRules } from './shape-rules/reduce.js';
import { tensorRules } from './shape-rules/tensor.js';
import { dependencies } from './traversal.js';
import { type Dim, formatShape, formatType, isStaticShape, type Shape, type ValueType } from './types.js';

/**
 * Shape and type inference over the IR.
 *
 * Rules live in one table, operator → rule (keys are `opType` for the default ONNX domain and
 * `domain::opType` otherwise); each rule reads its node's input types, attributes and the known
 * contents of small constant tensors, and returns the outputs' element types, shapes and (for shape
 * arithmetic) contents.
 *
 * Symbolic dims: a dim_param such as `batch` propagates unchanged. Products of dims are kept as
 * canonical monomials (`batch*seq`, `12*seq`) so a later Reshape with -1 can divide them back out;
 * sums of different symbols become null (unknown). See `shape-rules/dims.ts`.
 */

export type { OutSpec, RuleContext, ShapeRule } from './shape-rules/context.js';

/** Every shape rule, by operator (`opType`, or `domain::opType` outside the default domain). */
export const SHAPE_RULES: Readonly<RuleTable> = Object.freeze({
  ...elementwiseRules,
  ...tensorRules,
  ...generatorRules,
  ...nnRules,
  ...reduceRules,
  ...controlFlowRules,
  ...contribRules,
});

export interface InferenceOptions {
  /**
   * Overrides graph input shapes by input name, e.g. `{ input: [1, 3, 224, 224] }`. A symbolic dim the
   * model declared (`batch`) that receives a number is bound to it everywhere it is declared.
   */
  inputShapes?: Record<string, Dim[]>;
  /** Throw E_SHAPE on inconsistencies (incompatible shapes, conflicting declared types) instead of warning. */
  strict?: boolean;
}

export interface InferenceReport {
  /** Node outputs whose type a rule inferred. */
  inferred: number;
  /** Operators without a rule (their outputs keep whatever type was declared), with counts. */
  unknownOps: Record<string, number>;
  warnings: string[];
}

/**
 * Infers element types and shapes of every node output of the main graph (and If/Loop/Scan bodies),
 * in node order, and merges them into `value.type`. A concrete dim beats a symbolic or unknown one;
 * two different concrete dims (or element types, or ranks) are a conflict: an E_SHAPE error in strict
 * mode, else a warning, and the inferred type is kept.
 */
export function inferShapes(model: Model, opts: InferenceOptions = {}): InferenceReport {
  const state = new InferenceState(model, opts);
  if (opts.inputShapes) state.applyInputShapes(opts.inputShapes);
  state.inferGraph(model.graph);
  return state.report;
}

/** Lookup used by `inferShapes`: the rule for a node, or undefined. */
export function shapeRuleFor(node: Node): ShapeRule | undefined {
  const key = node.qualifiedOp;
  return Object.prototype.hasOwnProperty.call(SHAPE_RULES, key) ? SHAPE_RULES[key] : undefined;
}

/**
 * The graph's nodes in an order where producers come first. Usually the stored order; some exporters
 * (keras2onnx) write unsorted graphs, which ONNX Runtime accepts, so inference must too. Cycles leave
 * the remaining nodes in stored order.
 */
function executionOrder(graph: Graph): Node[] {
  const nodes = graph.nodes;
  const inGraph = new Set(nodes);
  const placed = new Set<Node>();
  const order: Node[] = [];
  const visiting = new Set<Node>();
  const visit = (root: Node): void => {
    // Iterative DFS: deep graphs (thousands of nodes) must not overflow the stack.
    const stack: Array<{ node: Node; deps: Value[]; next: number }> = [{ node: root, deps: dependencies(root), next: 0 }];
    visiting.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.deps.length) {
        const p = top.deps[top.next++]!.producer;
        if (p && inGraph.has(p) && !placed.has(p) && !visiting.has(p)) {
          visiting.add(p);
          stack.push({ node: p, deps: dependencies(p), next: 0 });
        }
        continue;
      }
      stack.pop();
      visiting.delete(top.node);
      placed.add(top.node);
      order.push(top.node);
    }
  };
  for (const n of nodes) if (!placed.has(n)) visit(n);
  return order;
}

class InferenceState {
  readonly report: InferenceReport = { inferred: 0, unknownOps: {}, warnings: [] };
  /** Known contents of small tensors (shape arithmetic). */
  private readonly known = new Map<Value, Dim[]>();
  private readonly done = new Set<Graph>();

  constructor(
    private readonly model: Model,
    private readonly opts: InferenceOptions,
  ) {}

  applyInputShapes(shapes: Record<string, Dim[]>): void {
    const g = this.model.graph;
    const bindings = new Map<string, number>();
    for (const [name, dims] of Object.entries(shapes)) {
      const v = g.inputs.find((x) => x.name === name);
      if (!v) throw new FrugalError('E_USAGE', `inputShapes: the graph has no input '${name}' (inputs: ${g.inputs.filter((x) => !x.initializer).map((x) => x.name).join(', ')})`);
      const t = v.type;
      if (!t || t.kind !== 'tensor') throw new FrugalError('E_USAGE', `inputShapes: input '${name}' is ${formatType(t)}, not a tensor`);
      if (t.shape && t.shape.length !== dims.length) {
        throw new FrugalError('E_USAGE', `inputShapes: input '${name}' has rank ${t.shape.length} (${formatShape(t.shape)}) but ${formatShape(dims)} was given`);
      }
      t.shape?.forEach((d, i) => {
        const n = dims[i];
        if (typeof n !== 'number') return;
        if (typeof d === 'number' && d !== n) this.conflict(`inputShapes: input '${name}' declares dim ${i} = ${d}; overriding with ${n}`);
        if (typeof d === 'string') bindings.set(d, n);
      });
      v.type = { ...t, shape: [...dims] };
    }
    if (bindings.size === 0) return;
    // Bind the same symbol wherever else it is declared (other inputs, value_info, outputs).
    const given = new Set(Object.keys(shapes));
    for (const graph of this.model.graph.allGraphs()) {
      for (const v of graph.values.values()) {
        if (graph === g && given.has(v.name) && g.inputs.includes(v)) continue;
        const t = v.type;
        if (t && t.kind === 'tensor' && t.shape?.some((d) => typeof d === 'string' && bindings.has(d))) {
          v.type = { ...t, shape: t.shape.map((d) => (typeof d === 'string' && bindings.has(d) ? bindings.get(d)! : d)) };
        }
      }
    }
  }

  inferGraph(graph: Graph): void {
    if (this.done.has(graph)) return;
    this.done.add(graph);
    for (const node of executionOrder(graph)) this.inferNode(node);
  }

  private inferNode(node: Node): void {
    const rule = shapeRuleFor(node);
    if (!rule) {
      this.report.unknownOps[node.qualifiedOp] = (this.report.unknownOps[node.qualifiedOp] ?? 0) + 1;
    } else {
      let specs: Array<OutSpec | undefined> = [];
      try {
        specs = rule(this.context(node));
      } catch (e) {
        if (this.opts.strict) throw isFrugalError(e) ? e : shapeError(node, `shape rule failed: ${(e as Error).message}`);
        this.report.warnings.push(isFrugalError(e) ? e.message : `${node.describe()}: shape rule failed: ${(e as Error).message}`);
      }
      node.outputs.forEach((v, i) => {
        const spec = specs[i];
        if (v && spec) this.assign(node, v, spec);
      });
    }
    // Bodies of ops whose rule did not look inside (or unknown ops) are still typed where possible.
    for (const g of node.subgraphs()) this.inferGraph(g);
  }

  private context(node: Node): RuleContext {
    const ins = node.inputs;
    let count = ins.length;
    while (count > 0 && !ins[count - 1]) count--;
    const typeOf = (i: number): ValueType | undefined => {
      const v = ins[i];
      if (!v) return undefined;
      if (v.type) return v.type;
      return v.initializer ? { kind: 'tensor', elemType: v.initializer.dtype, shape: [...v.initializer.dims] } : undefined;
    };
    const values = (i: number): Dim[] | undefined => {
      const v = ins[i];
      return v ? this.valuesOf(v) : undefined;
    };
    const state = this;
    return {
      node,
      opset: this.model.opsetFor(node.domain) ?? 1,
      inputCount: count,
      has: (i) => !!ins[i],
      type: typeOf,
      elem: (i) => {
        const t = typeOf(i);
        return t && (t.kind === 'tensor' || t.kind === 'sparse_tensor') && t.elemType !== 0 ? t.elemType : undefined;
      },
      shape: (i) => {
        const t = typeOf(i);
        return t && (t.kind === 'tensor' || t.kind === 'sparse_tensor') ? t.shape : undefined;
      },
      values,
      nums: (i) => {
        const v = values(i);
        return v && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
      },
      inferSubgraph(attrName) {
        const g = node.attr(attrName);
        if (g && typeof g === 'object' && 'nodes' in g) state.inferGraph(g as Graph);
      },
      fail(message): never {
        throw shapeError(node, message);
      },
      warn(message) {
        state.report.warnings.push(`${node.describe()}: ${message}`);
      },
    };
  }

  private valuesOf(v: Value): Dim[] | undefined {
    const k = this.known.get(v);
    if (k) return k;
    if (v.initializer) {
      const t = tensorValues(v.initializer);
      if (t) this.known.set(v, t);
      return t;
    }
    return undefined;
  }

  private assign(node: Node, v: Value, spec: OutSpec): void {
    let inferred: ValueType | undefined = spec.type;
    if (!inferred) {
      const declared = v.type;
      const elemType = spec.elemType ?? (declared?.kind === 'tensor' ? declared.elemType : undefined);
      if (elemType === undefined && spec.shape === undefined) return;
      inferred = { kind: 'tensor', elemType: elemType ?? 0 };
      if (spec.shape) inferred.shape = spec.shape.map(canonicalDim);
    }
    inferred = this.checkDims(node, v, inferred);
    this.report.inferred++;
    v.type = this.merge(node, v, v.type, inferred);
    const shape = v.type.kind === 'tensor' ? v.type.shape : undefined;
    if (spec.values && isStaticShape(shape) && shape.reduce((a, b) => a * b, 1) === spec.values.length) {
      this.known.set(v, spec.values.map((d) => (typeof d === 'number' && !Number.isFinite(d) ? null : canonicalDim(d))));
    }
  }

  /**
   * Invariant: an inferred dim is a non-negative safe integer, a symbol or unknown. A rule fed a corrupt
   * model (mismatched attribute lengths, absurd sizes) can compute NaN, a fraction or a negative size;
   * such a dim becomes unknown (with a warning naming the node) instead of reaching value_info, where
   * it could not be encoded.
   */
  private checkDims(node: Node, v: Value, t: ValueType): ValueType {
    if ((t.kind !== 'tensor' && t.kind !== 'sparse_tensor') || !t.shape) return t;
    const bad = t.shape.filter((d) => typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0));
    if (bad.length === 0) return t;
    this.report.warnings.push(`${node.describe()}: inferred dimension ${bad[0]} for output '${v.name}' is not a valid size; left unknown (is the model corrupt?)`);
    return { ...t, shape: t.shape.map((d) => (typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0) ? null : d)) };
  }

  private merge(node: Node, v: Value, declared: ValueType | undefined, inferred: ValueType): ValueType {
    if (!declared || declared.kind === 'unknown') return inferred;
    if (declared.kind !== 'tensor' || inferred.kind !== 'tensor') {
      if (declared.kind !== inferred.kind) this.conflict(`${node.describe()}: output '${v.name}' is declared ${formatType(declared)} but inferred ${formatType(inferred)}`);
      return inferred;
    }
    let elemType = inferred.elemType || declared.elemType;
    if (declared.elemType && inferred.elemType && declared.elemType !== inferred.elemType) {
      this.conflict(`${node.describe()}: output '${v.name}' is declared ${formatType(declared)} but inferred ${formatType(inferred)}`);
      elemType = inferred.elemType;
    }
    const out: ValueType = { ...declared, elemType };
    out.shape = this.mergeShape(node, v, declared.shape, inferred.shape);
    if (out.shape === undefined) delete out.shape;
    return out;
  }

  private mergeShape(node: Node, v: Value, d: Shape | undefined, i: Shape | undefined): Shape | undefined {
    if (!d) return i;
    if (!i) return d;
    const clash = () => `${node.describe()}: output '${v.name}' is declared ${formatShape(d)} but inferred ${formatShape(i)}`;
    if (d.length !== i.length) {
      this.conflict(clash());
      return i;
    }
    return d.map((dd, k) => {
      const ii = i[k]!;
      if (typeof dd === 'number' && typeof ii === 'number') {
        if (dd !== ii) this.conflict(clash());
        return ii;
      }
      if (typeof dd === 'number') return dd;
      if (typeof ii === 'number') return ii;
      // Two symbols: the model's own name wins over a derived expression.
      return dd ?? ii;
    });
  }

  private conflict(message: string): void {
    if (this.opts.strict) throw new FrugalError('E_SHAPE', message);
    this.report.warnings.push(message);
  }
}
