import { Graph } from './graph.js';
import type { Attribute, Extras, Node } from './node.js';

/**
 * A model-local function (FunctionProto). Its body is a Graph whose inputs and outputs are the formal
 * parameters (usually untyped); nodes may carry attributes with `refAttrName`.
 */
export class OnnxFunction {
  domain: string;
  name: string;
  overload: string | undefined;
  body: Graph;
  /** Attribute names without defaults. */
  attributeNames: string[] = [];
  /** Attributes with default values. */
  attributeDefaults: Attribute[] = [];
  opsetImports = new Map<string, number>();
  extras: Extras = {};

  constructor(domain: string, name: string, body = new Graph(name)) {
    this.domain = domain;
    this.name = name;
    this.overload = undefined;
    this.body = body;
  }

  /** Key used to match call sites: `domain:name[:overload]`. */
  get key(): string {
    return functionKey(this.domain, this.name, this.overload);
  }
}

export function functionKey(domain: string, name: string, overload?: string): string {
  return overload ? `${domain}:${name}:${overload}` : `${domain}:${name}`;
}

/** TrainingInfoProto: graphs to initialize and update training state, with their bindings. */
export interface TrainingInfo {
  initialization?: Graph;
  algorithm?: Graph;
  initializationBinding: Array<[string, string]>;
  updateBinding: Array<[string, string]>;
  extras: Extras;
}

/**
 * A whole ONNX model: metadata, opset imports, the main graph, local functions and training info.
 */
export class Model {
  irVersion: number;
  /** Operator set imports: domain ('' for the default ONNX domain) → version. */
  opsetImports: Map<string, number>;
  producerName: string | undefined;
  producerVersion: string | undefined;
  domain: string | undefined;
  modelVersion: number | bigint | undefined;
  graph: Graph;
  functions: OnnxFunction[] = [];
  trainingInfo: TrainingInfo[] = [];
  extras: Extras = {};

  constructor(graph: Graph, opts: { irVersion?: number; opsetImports?: Record<string, number> | Map<string, number>; producerName?: string; producerVersion?: string } = {}) {
    this.graph = graph;
    this.irVersion = opts.irVersion ?? 8;
    this.opsetImports = opts.opsetImports instanceof Map ? new Map(opts.opsetImports) : new Map(Object.entries(opts.opsetImports ?? { '': 17 }));
    this.producerName = opts.producerName;
    this.producerVersion = opts.producerVersion;
    this.domain = undefined;
    this.modelVersion = undefined;
  }

  /** The default-domain opset version (ai.onnx), or 1 when not imported. */
  get opset(): number {
    return this.opsetImports.get('') ?? this.opsetImports.get('ai.onnx') ?? 1;
  }

  /** The opset version imported for a domain ('' and 'ai.onnx' are the same domain). */
  opsetFor(domain: string): number | undefined {
    if (domain === '' || domain === 'ai.onnx') return this.opset;
    return this.opsetImports.get(domain);
  }

  /** The local function a node calls, if any. */
  functionFor(node: Node): OnnxFunction | undefined {
    const key = functionKey(node.domain, node.opType, node.overload);
    return this.functions.find((f) => f.key === key);
  }

  /** Every graph: main graph and subgraphs, function bodies, training graphs. */
  *allGraphs(): Generator<Graph> {
    yield* this.graph.allGraphs();
    for (const f of this.functions) yield* f.body.allGraphs();
    for (const t of this.trainingInfo) {
      if (t.initialization) yield* t.initialization.allGraphs();
      if (t.algorithm) yield* t.algorithm.allGraphs();
    }
  }
}
