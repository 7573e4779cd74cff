import path from 'node:path';
import { countParameters, estimateCost } from './cost.js';
import { dataTypeName } from './dtype.js';
import { inferShapes } from './shape-inference.js';
import type { Graph } from './graph.js';
import type { Dim } from './types.js';
import type { Model } from './model.js';
import type { Node, Value } from './node.js';
import { formatType, type ValueType } from './types.js';

export interface IoSummary {
  name: string;
  /** e.g. `float32[batch,784]`. */
  type: string;
  elemType: string | null;
  shape: Array<number | string | null> | null;
}

/**
 * What `frugal inspect` reports. Counts cover the main graph; `nodeCountWithSubgraphs` adds every
 * node inside If/Loop/Scan bodies (functions are listed separately). FLOPs come from the cost model
 * when shapes are known (see `flops` and `flopsKnownFraction`).
 */
export interface ModelSummary {
  irVersion: number;
  opsets: Record<string, number>;
  producer: string | null;
  graphName: string;
  inputs: IoSummary[];
  outputs: IoSummary[];
  nodeCount: number;
  nodeCountWithSubgraphs: number;
  subgraphCount: number;
  functionCount: number;
  opHistogram: Record<string, number>;
  initializerCount: number;
  parameterCount: number;
  parameterBytes: number;
  bytesByDtype: Record<string, number>;
  externalDataFiles: string[];
  flops: number | null;
  /** Fraction of nodes with a FLOP figure. */
  flopsKnownFraction: number;
  /** Sum over the nodes that have a figure: a lower bound when `flops` is null. */
  knownFlops: number;
  /**
   * Nodes without a FLOP figure by op type, and why: 'shapes unknown' (symbolic dims left open: give
   * input shapes) or 'no cost rule' (shapes are known but the cost model does not price this op).
   */
  flopsUnknown: Array<{ op: string; count: number; reason: 'shapes unknown' | 'no cost rule' }>;
  /** What shape inference found inconsistent (e.g. a Concat whose inputs disagree for these shapes). */
  shapeWarnings: string[];
}

function ioSummary(v: Value): IoSummary {
  const t: ValueType | undefined = v.type;
  const tensor = t && (t.kind === 'tensor' || t.kind === 'sparse_tensor') ? t : undefined;
  return {
    name: v.name,
    type: formatType(t),
    elemType: tensor ? dataTypeName(tensor.elemType) : null,
    shape: tensor?.shape ? [...tensor.shape] : null,
  };
}

/** Graph inputs that callers must feed (initializer-backed inputs of IR < 4 models are optional). */
export function requiredInputs(g: Graph): Value[] {
  return g.inputs.filter((v) => !v.initializer);
}

/**
 * Counts that need no shape information: nodes, ops, initializers, parameters, bytes by dtype. Every
 * graph of the model is walked (main graph, subgraphs, functions); each initializer counts once.
 */
export function summarizeStructure(model: Model): Omit<ModelSummary, 'flops' | 'flopsKnownFraction' | 'knownFlops' | 'flopsUnknown' | 'shapeWarnings'> {
  const opHistogram: Record<string, number> = {};
  let nodeCountWithSubgraphs = 0;
  let subgraphCount = 0;
  for (const g of model.graph.allGraphs()) {
    if (g !== model.graph) subgraphCount++;
    for (const n of g.nodes) {
      nodeCountWithSubgraphs++;
      opHistogram[n.qualifiedOp] = (opHistogram[n.qualifiedOp] ?? 0) + 1;
    }
  }
  let initializerCount = 0;
  const externalFiles = new Set<string>();
  for (const g of model.graph.allGraphs()) {
    initializerCount += g.initializers().length + g.sparseInitializerNames.length;
    for (const v of g.initializers()) if (v.initializer!.external) externalFiles.add(path.normalize(v.initializer!.external.location));
  }
  const { parameterCount, parameterBytes, bytesByDtype } = countParameters(model);
  const sortedHistogram = Object.fromEntries(Object.entries(opHistogram).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return {
    irVersion: model.irVersion,
    opsets: Object.fromEntries([...model.opsetImports].map(([d, v]) => [d === '' ? 'ai.onnx' : d, v])),
    producer: model.producerName ? `${model.producerName}${model.producerVersion ? ` ${model.producerVersion}` : ''}` : null,
    graphName: model.graph.name,
    inputs: requiredInputs(model.graph).map(ioSummary),
    outputs: model.graph.outputs.map(ioSummary),
    nodeCount: model.graph.nodes.length,
    nodeCountWithSubgraphs,
    subgraphCount,
    functionCount: model.functions.length,
    opHistogram: sortedHistogram,
    initializerCount,
    parameterCount,
    parameterBytes,
    bytesByDtype,
    externalDataFiles: [...externalFiles].sort(),
  };
}

/**
 * Everything `frugal inspect` reports. Runs shape inference (with `inputShapes` overriding declared
 * input shapes; symbolic dims left open make FLOPs unknown) and the cost model. Types inferred here are
 * written into the model's values.
 */
export function inspectModel(model: Model, opts: { inputShapes?: Record<string, Dim[]> } = {}): ModelSummary {
  const structure = summarizeStructure(model);
  const inference = inferShapes(model, { inputShapes: opts.inputShapes });
  const cost = estimateCost(model);
  const byName = new Map<string, Node>();
  for (const n of model.graph.allNodes()) if (n.name) byName.set(n.name, n);
  const concrete = (v: Value | null): boolean => {
    const t = v?.type;
    return !v || (!!t && (t.kind !== 'tensor' || (!!t.shape && t.shape.every((d) => typeof d === 'number'))));
  };
  const unknown = new Map<string, { op: string; count: number; reason: 'shapes unknown' | 'no cost rule' }>();
  for (const c of cost.perNode) {
    if (c.flops !== null) continue;
    const n = byName.get(c.node);
    const reason = n && [...n.inputs, ...n.outputs].every(concrete) ? 'no cost rule' : 'shapes unknown';
    const e = unknown.get(`${c.opType}|${reason}`) ?? { op: c.opType, count: 0, reason };
    e.count++;
    unknown.set(`${c.opType}|${reason}`, e);
  }
  return { ...structure, flops: cost.flops, flopsKnownFraction: cost.flopsKnownFraction, knownFlops: cost.knownFlops, flopsUnknown: [...unknown.values()], shapeWarnings: inference.warnings };
}
