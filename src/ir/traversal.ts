import { FrugalError } from '../errors.js';
import type { Graph } from './graph.js';
import type { Node, Value } from './node.js';

/**
 * Values from enclosing scopes that a node's subgraphs read (If/Loop/Scan bodies capture outer values
 * by name). They order the node after their producers just like ordinary inputs.
 */
export function implicitInputs(node: Node): Value[] {
  const out = new Set<Value>();
  for (const sub of node.subgraphs()) {
    for (const g of sub.allGraphs()) {
      for (const n of g.nodes) {
        for (const v of n.inputs) if (v && !isWithin(v.graph, sub)) out.add(v);
      }
      for (const v of g.outputs) if (!isWithin(v.graph, sub)) out.add(v);
    }
  }
  return [...out];
}

/** True when `g` is `root` or nested inside it. */
function isWithin(g: Graph, root: Graph): boolean {
  for (let x: Graph | undefined = g; x; x = x.parent) if (x === root) return true;
  return false;
}

/** Every input of a node that orders it: explicit inputs plus outer values its subgraphs capture. */
export function dependencies(node: Node): Value[] {
  const deps = node.inputs.filter((v): v is Value => v !== null);
  return node.subgraphs().length ? [...deps, ...implicitInputs(node)] : deps;
}

/**
 * Sorts the graph's nodes (and, recursively, its subgraphs') topologically, keeping the existing order
 * where it is already valid (a stable Kahn sort). Throws E_INVALID_MODEL naming a node on a cycle.
 */
export function topologicalSort(graph: Graph): void {
  for (const n of graph.nodes) for (const g of n.subgraphs()) topologicalSort(g);
  const nodes = graph.nodes;
  const index = new Map<Node, number>(nodes.map((n, i) => [n, i]));
  const pending = new Map<Node, number>();
  const dependents = new Map<Node, Node[]>();
  for (const n of nodes) {
    let count = 0;
    for (const v of dependencies(n)) {
      const p = v.producer;
      // Only producers in this graph order nodes here; outer producers are ordered by the outer sort.
      if (p && index.has(p)) {
        count++;
        let list = dependents.get(p);
        if (!list) dependents.set(p, (list = []));
        list.push(n);
      }
    }
    pending.set(n, count);
  }
  // Ready queue ordered by original position keeps the sort stable.
  const ready: Node[] = nodes.filter((n) => pending.get(n) === 0);
  const out: Node[] = [];
  while (ready.length) {
    let best = 0;
    for (let i = 1; i < ready.length; i++) if (index.get(ready[i]!)! < index.get(ready[best]!)!) best = i;
    const n = ready.splice(best, 1)[0]!;
    out.push(n);
    for (const d of dependents.get(n) ?? []) {
      const c = pending.get(d)! - 1;
      pending.set(d, c);
      if (c === 0) ready.push(d);
    }
  }
  if (out.length !== nodes.length) {
    const stuck = nodes.find((n) => !out.includes(n))!;
    throw new FrugalError('E_INVALID_MODEL', `graph '${graph.name}' has a cycle through ${stuck.describe()}`);
  }
  nodes.splice(0, nodes.length, ...out);
}

/** A node is side-effect free unless it is in a non-default domain we cannot reason about... */
function isRemovable(node: Node): boolean {
  // Every standard ONNX op is pure; custom-domain ops are assumed pure too, as ORT treats them.
  return node.opType !== 'Print';
}

/**
 * Removes nodes whose outputs nobody reads (in this graph, enclosing graphs or as graph outputs), and
 * initializers nobody reads. Works on subgraphs first. Returns how many nodes were removed.
 */
export function eliminateDeadCode(graph: Graph, opts: { keepInitializers?: boolean } = {}): number {
  let removed = 0;
  for (const n of graph.nodes) for (const g of n.subgraphs()) removed += eliminateDeadCode(g, opts);
  // Walk backwards: removing a consumer can make its producers dead.
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    const live = n.outputs.some((o) => o && (o.uses.length > 0 || o.isGraphOutput));
    if (!live && isRemovable(n)) {
      graph.removeNode(n, true);
      removed++;
    }
  }
  if (!opts.keepInitializers) {
    for (const v of graph.initializers()) {
      if (v.uses.length === 0 && !v.isGraphOutput && !v.isGraphInput) graph.removeInitializer(v);
    }
  }
  return removed;
}

