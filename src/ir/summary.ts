import path from 'node:path';
import { countParameters, estimateCost } from './cost.js';
import { dataTypeName } from './dtype.js';
import type { Graph } from './graph.js';
import type { Dim } from './types.js';
import type { Model } from './model.js';
import type { Value } from './node.js';
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
  flopsKnownFraction: number;
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
export function summarizeStructure(model: Model): Omit<ModelSummary, 'flops' | 'flopsKnownFraction'> {
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
  const cost = estimateCost(model, { infer: { inputShapes: opts.inputShapes } });
  return { ...structure, flops: cost.flops, flopsKnownFraction: cost.flopsKnownFraction };
}
