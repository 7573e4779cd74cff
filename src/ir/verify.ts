import { FrugalError } from '../errors.js';
import type { Graph } from './graph.js';
import type { Model } from './model.js';
import type { Value } from './node.js';
import { implicitInputs } from './traversal.js';

/**
 * Structural checks that every pass must preserve (run between passes in tests):
 * - SSA: each value has at most one producer, and `producer.outputs[producerIndex]` is the value;
 * - use-lists agree with node inputs, both ways;
 * - node order is topological and every input is defined before use (graph input, initializer,
 *   earlier node, or a value of an enclosing scope);
 * - names are unique across a graph and the scopes enclosing it;
 * - graph outputs are defined; initializer types match their tensors;
 * - every node's domain has an opset import (or names a local function).
 * Returns the problems found; `verify` throws them.
 */
export function findProblems(model: Model): string[] {
  const problems: string[] = [];
  const functionKeys = new Set(model.functions.map((f) => `${f.domain}:${f.name}`));
  const checkDomains = (g: Graph, imports: Map<string, number>): void => {
    for (const n of g.allNodes()) {
      const d = n.domain === 'ai.onnx' ? '' : n.domain;
      if (!imports.has(d) && !(d === '' && imports.has('ai.onnx')) && !functionKeys.has(`${n.domain}:${n.opType}`)) {
        problems.push(`${n.describe()}: domain '${n.domain || 'ai.onnx'}' has no opset import`);
      }
    }
  };
  checkGraph(model.graph, problems, new Set());
  checkDomains(model.graph, model.opsetImports);
  for (const f of model.functions) {
    checkGraph(f.body, problems, new Set());
    checkDomains(f.body, f.opsetImports.size ? f.opsetImports : model.opsetImports);
  }
  return problems;
}

/** Throws E_INVALID_MODEL listing up to 10 problems when the model breaks an IR invariant. */
export function verify(model: Model): void {
  const problems = findProblems(model);
  if (problems.length) {
    const more = problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : '';
    throw new FrugalError('E_INVALID_MODEL', `model failed verification (${problems.length} problem(s)):\n  ${problems.slice(0, 10).join('\n  ')}${more}`);
  }
}

function checkGraph(graph: Graph, problems: string[], outerNames: Set<string>): void {
  const where = `graph '${graph.name}'`;
  for (const [name, v] of graph.values) {
    if (v.name !== name) problems.push(`${where}: symbol table maps '${name}' to value '${v.name}'`);
    if (v.graph !== graph) problems.push(`${where}: value '${name}' belongs to graph '${v.graph.name}'`);
    if (outerNames.has(name)) problems.push(`${where}: value '${name}' shadows a value of an enclosing graph`);
    if (v.producer && v.producer.outputs[v.producerIndex] !== v) problems.push(`${where}: value '${name}' names a producer that does not output it`);
    if (v.initializer) {
      const t = v.type;
      if (t && t.kind === 'tensor' && t.elemType !== 0 && t.elemType !== v.initializer.dtype) {
        problems.push(`${where}: initializer '${name}' is declared type ${t.elemType} but holds ${v.initializer.dtype}`);
      }
      if (v.producer) problems.push(`${where}: initializer '${name}' is also produced by ${v.producer.describe()}`);
    }
    for (const u of v.uses) {
      if (u.node.inputs[u.index] !== v) problems.push(`${where}: value '${name}' lists a use by ${u.node.describe()} input ${u.index} that reads something else`);
    }
  }
  const defined = new Set<Value>();
  for (const v of graph.inputs) defined.add(v);
  for (const v of graph.values.values()) if (v.isConstant) defined.add(v);
  const isAvailable = (v: Value): boolean => defined.has(v) || (v.graph !== graph && isEnclosing(v.graph, graph));
  for (const n of graph.nodes) {
    if (n.graph !== graph) problems.push(`${where}: ${n.describe()} has graph '${n.graph?.name}'`);
    n.inputs.forEach((v, i) => {
      if (!v) return;
      if (!v.uses.some((u) => u.node === n && u.index === i)) problems.push(`${n.describe()}: input ${i} '${v.name}' is missing from that value's use-list`);
      if (!isAvailable(v)) {
        problems.push(
          v.producer && v.producer.graph === graph
            ? `${n.describe()}: input '${v.name}' is used before ${v.producer.describe()} produces it (not topologically sorted)`
            : `${n.describe()}: input '${v.name}' is not defined in this graph or an enclosing one`,
        );
      }
    });
    for (const v of implicitInputs(n)) {
      if (v.graph === graph && !isAvailable(v)) problems.push(`${n.describe()}: its subgraph reads '${v.name}' before it is defined`);
    }
    n.outputs.forEach((v, i) => {
      if (!v) return;
      if (v.producer !== n || v.producerIndex !== i) problems.push(`${n.describe()}: output ${i} '${v.name}' does not point back to this node`);
      if (graph.values.get(v.name) !== v) problems.push(`${n.describe()}: output '${v.name}' is not in the graph's symbol table`);
      defined.add(v);
    });
  }
  for (const v of graph.outputs) {
    if (!isAvailable(v) && !defined.has(v)) problems.push(`${where}: output '${v.name}' is never defined`);
  }
  const names = new Set([...outerNames, ...graph.values.keys()]);
  for (const n of graph.nodes) for (const sub of n.subgraphs()) checkGraph(sub, problems, names);
}

function isEnclosing(outer: Graph, inner: Graph): boolean {
  for (let g = inner.parent; g; g = g.parent) if (g === outer) return true;
  return false;
}
