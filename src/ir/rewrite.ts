/**
 * Small graph-editing helpers shared by the rewriting passes: replace a node by a chain of new ones
 * that ends in the old node's output value (so graph output names and downstream uses stay as they
 * are), add constants, and drop float weights nothing reads any more.
 */
import type { Graph } from './graph.js';
import { Node, type NodeInit, type Value } from './node.js';
import { Tensor, type TypedArray } from './tensor.js';

/** Adds a constant initializer named after `base` (made unique). */
export function addConstant(g: Graph, base: string, dtype: number, dims: readonly number[], data: TypedArray): Value {
  return g.addInitializer(g.uniqueName(base), Tensor.fromArray(dtype, dims, data));
}

/** Inserts `node` at position `index` of the graph's node list. */
function insertAt(g: Graph, node: Node, index: number): void {
  if (index < g.nodes.length) g.insertNode(node, { before: g.nodes[index]! });
  else g.insertNode(node);
}

/** A node to emit: like NodeInit, with output count or explicit output values. */
export type Emit = Omit<NodeInit, 'outputs'> & { outputs?: Array<Value | null>; outputCount?: number };

/**
 * Inserts new nodes at the position of `anchor` (before it), in order, creating fresh output values
 * named after each node. Returns the nodes. Topological order holds when the inputs of the new nodes
 * are defined before `anchor`.
 */
export function emitBefore(g: Graph, anchor: Node, specs: Emit[]): Node[] {
  let index = g.nodes.indexOf(anchor);
  return specs.map((s) => {
    const outputs = s.outputs ?? Array.from({ length: s.outputCount ?? 1 }, (_, i) => g.createValue(`${s.name ?? s.opType}_out${i ? i : ''}`));
    const node = new Node({ ...s, outputs });
    insertAt(g, node, index++);
    return node;
  });
}

/**
 * Replaces `old` by `specs`; the last spec's first output becomes `old`'s first output value (so its
 * uses and graph-output status carry over). Returns the new nodes.
 */
export function replaceNode(g: Graph, old: Node, specs: Emit[]): Node[] {
  const out = old.outputs[0]!;
  const index = g.nodes.indexOf(old);
  g.removeNode(old, true);
  const last = specs[specs.length - 1]!;
  const nodes: Node[] = [];
  let i = index;
  for (const s of specs) {
    const outputs = s === last ? [out] : (s.outputs ?? Array.from({ length: s.outputCount ?? 1 }, (_, k) => g.createValue(`${s.name ?? s.opType}_out${k ? k : ''}`)));
    const node = new Node({ ...s, outputs });
    insertAt(g, node, i++);
    nodes.push(node);
  }
  return nodes;
}

/** Removes initializers in `candidates` that nothing reads any more (the float weights replaced). */
export function dropUnusedInitializers(candidates: Iterable<Value>): void {
  for (const v of candidates) if (v.initializer && v.uses.length === 0 && !v.isGraphOutput && !v.isGraphInput) v.graph.removeInitializer(v);
}
