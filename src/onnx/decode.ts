import { FrugalError } from '../errors.js';
import { Graph } from '../ir/graph.js';
import { Model, OnnxFunction, type TrainingInfo } from '../ir/model.js';
import { type Attribute, type AttributeValue, type Extras, Node } from '../ir/node.js';
import { AttributeType, type Shape, type ValueType } from '../ir/types.js';
import { decodeMessage } from './proto.js';
import { textDecoder } from './proto-decode.js';
import type { AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TypeProto, TypeProtoTensor, ValueInfoProto } from './proto-types.js';
import { entriesOf, sparseFromProto, tensorFromProto, toNumber } from './tensor-codec.js';

const warningsByModel = new WeakMap<Model, string[]>();

/** What the decoder repaired or tolerated in an invalid-but-loadable model (e.g. a name defined twice). */
export function decodeWarnings(model: Model): string[] {
  return warningsByModel.get(model) ?? [];
}

export interface DecodeOptions {
  /** Folder that external-data locations are relative to; without it external tensors cannot be read. */
  baseDir?: string;
}

/** Decodes `.onnx` bytes to an IR Model. Large tensors stay views into `bytes`. */
export function decodeModel(bytes: Uint8Array, opts: DecodeOptions = {}): Model {
  if (bytes.byteLength === 0) throw new FrugalError('E_DECODE', 'Invalid ONNX model: the file is empty');
  const proto = decodeMessage('ModelProto', bytes);
  return modelFromProto(proto, opts);
}

export function modelFromProto(p: ModelProto, opts: DecodeOptions = {}): Model {
  if (!p.graph) {
    throw new FrugalError('E_DECODE', 'Invalid ONNX model: it has no graph (is this an ONNX model file? the bytes decoded as protobuf but hold no ModelProto.graph)');
  }
  const opsets = new Map<string, number>();
  for (const o of p.opsetImport) opsets.set(o.domain ?? '', toNumber(o.version, `opset_import '${o.domain ?? ''}'`));
  const ctx = new Ctx(opts.baseDir);
  const model = new Model(new Graph(), { irVersion: toNumber(p.irVersion, 'ir_version'), opsetImports: opsets });
  model.producerName = p.producerName;
  model.producerVersion = p.producerVersion;
  model.domain = p.domain;
  model.modelVersion = p.modelVersion;
  model.extras = extras(p.docString, p.metadataProps, p.unknownFields);
  if (p.configuration.length) (model.extras.codec ??= {}).configuration = p.configuration;
  model.graph = ctx.graph(p.graph, undefined);
  model.functions = p.functions.map((f) => ctx.func(f));
  if (ctx.warnings.length) warningsByModel.set(model, ctx.warnings);
  model.trainingInfo = p.trainingInfo.map(
    (t): TrainingInfo => ({
      initialization: t.initialization ? ctx.graph(t.initialization, model.graph) : undefined,
      algorithm: t.algorithm ? ctx.graph(t.algorithm, model.graph) : undefined,
      initializationBinding: entriesOf(t.initializationBinding),
      updateBinding: entriesOf(t.updateBinding),
      extras: extras(undefined, undefined, t.unknownFields),
    }),
  );
  return model;
}

function extras(docString: string | undefined, metadata: ValueInfoProto['metadataProps'] | undefined, unknown: Uint8Array[] | undefined): Extras {
  const e: Extras = {};
  if (docString !== undefined) e.docString = docString;
  if (metadata?.length) e.metadataProps = entriesOf(metadata);
  if (unknown?.length) e.codec = { unknownFields: unknown };
  return e;
}

/** TypeProto → ValueType (undefined when the proto carries no type at all). */
export function typeFromProto(t: TypeProto | undefined): ValueType | undefined {
  if (!t) return undefined;
  const den = t.denotation !== undefined ? { denotation: t.denotation } : {};
  const tensorLike = (tt: TypeProtoTensor) => {
    let shape: Shape | undefined;
    let dimDenotations: Array<string | undefined> | undefined;
    if (tt.shape) {
      shape = tt.shape.dim.map((d) => (d.dimValue !== undefined ? toNumber(d.dimValue, 'dim_value') : d.dimParam !== undefined ? d.dimParam : null));
      if (tt.shape.dim.some((d) => d.denotation !== undefined)) dimDenotations = tt.shape.dim.map((d) => d.denotation);
    }
    return { elemType: tt.elemType ?? 0, ...(shape ? { shape } : {}), ...(dimDenotations ? { dimDenotations } : {}), ...den };
  };
  if (t.tensorType) return { kind: 'tensor', ...tensorLike(t.tensorType) };
  if (t.sparseTensorType) return { kind: 'sparse_tensor', ...tensorLike(t.sparseTensorType) };
  if (t.sequenceType) return { kind: 'sequence', elem: typeFromProto(t.sequenceType.elemType), ...den };
  if (t.mapType) return { kind: 'map', keyType: t.mapType.keyType ?? 0, value: typeFromProto(t.mapType.valueType), ...den };
  if (t.optionalType) return { kind: 'optional', elem: typeFromProto(t.optionalType.elemType), ...den };
  if (t.opaqueType) return { kind: 'opaque', domain: t.opaqueType.domain, name: t.opaqueType.name, ...den };
  return { kind: 'unknown', ...den };
}

class Ctx {
  readonly warnings: string[] = [];
  constructor(readonly baseDir: string | undefined) {}

  /**
   * Builds a graph in three steps so that unsorted graphs and subgraphs that capture outer values work:
   * 1. define inputs, initializers and every node output in this scope;
   * 2. decode attributes (subgraphs see all of this scope's values);
   * 3. connect node inputs by name, creating a placeholder for names defined nowhere (verify reports it).
   */
  graph(p: GraphProto, parent: Graph | undefined): Graph {
    const g = new Graph(p.name ?? '', parent);
    g.extras = extras(p.docString, p.metadataProps, p.unknownFields);
    for (const vi of p.input) {
      const v = g.addInput(vi.name ?? '', typeFromProto(vi.type) ?? { kind: 'unknown' });
      if (!vi.type) v.type = undefined;
      v.extras = extras(vi.docString, vi.metadataProps, vi.unknownFields);
    }
    for (const tp of p.initializer) {
      const t = tensorFromProto(tp, this.baseDir);
      const existing = g.values.get(t.name);
      if (existing && existing.isGraphInput && !existing.initializer) {
        // IR < 4 style: the initializer gives a graph input its default value.
        existing.initializer = t;
        g.initializerNames.push(t.name);
      } else {
        g.addInitializer(t.name, t, true);
      }
    }
    for (const sp of p.sparseInitializer) {
      const s = sparseFromProto(sp, this.baseDir);
      g.addSparseInitializer(s.values.name, s);
    }
    const nodes = p.node.map((np) => {
      const n = new Node({ opType: np.opType ?? '', domain: np.domain ?? '', name: np.name, overload: np.overload });
      if (np.name === undefined) n.name = '';
      n.extras = extras(np.docString, np.metadataProps, np.unknownFields);
      if (np.deviceConfigurations.length) (n.extras.codec ??= {}).deviceConfigurations = np.deviceConfigurations;
      for (const out of np.output) {
        if (out === '') n.appendOutput(null);
        else if (!g.values.has(out)) n.appendOutput(g.createValue(out, undefined, true));
        else {
          // Invalid but seen in real exports (gpt2 with two Constants writing one name). ONNX Runtime
          // binds every reader to the last definition in the file, so the earlier one is renamed.
          const earlier = g.values.get(out)!;
          g.renameValue(earlier, g.uniqueName(`${out}__shadowed`));
          n.appendOutput(g.createValue(out, undefined, true));
          this.warnings.push(`graph '${g.name}': value '${out}' is produced twice; the earlier definition was renamed '${earlier.name}' (readers use the last one, as ONNX Runtime does)`);
        }
      }
      g.insertNode(n);
      return n;
    });
    p.node.forEach((np, i) => this.attributes(np, nodes[i]!, g));
    const resolve = (name: string) => g.lookup(name) ?? g.createValue(name, undefined, true);
    p.node.forEach((np, i) => {
      for (const name of np.input) nodes[i]!.appendInput(name === '' ? null : resolve(name));
    });
    for (const vi of p.valueInfo) {
      const v = g.values.get(vi.name ?? '') ?? g.createValue(vi.name ?? '', undefined, true);
      v.type = typeFromProto(vi.type);
      v.hasValueInfo = true;
      v.extras = extras(vi.docString, vi.metadataProps, vi.unknownFields);
    }
    for (const vi of p.output) {
      const v = resolve(vi.name ?? '');
      const t = typeFromProto(vi.type);
      if (t) v.type = t;
      if (vi.docString !== undefined || vi.metadataProps.length || vi.unknownFields?.length) v.extras = extras(vi.docString, vi.metadataProps, vi.unknownFields);
      g.outputs.push(v);
    }
    g.quantizationAnnotations = p.quantizationAnnotation.map((a) => ({ tensorName: a.tensorName ?? '', params: entriesOf(a.quantParameterTensorNames) }));
    return g;
  }

  private attributes(np: NodeProto, node: Node, g: Graph): void {
    for (const ap of np.attribute) {
      const a = this.attribute(ap, g, node);
      node.attributes.set(a.name, a);
    }
  }

  attribute(ap: AttributeProto, g: Graph | undefined, owner: Node | undefined): Attribute {
    const type = ap.type ?? legacyAttributeType(ap);
    const a: Attribute = { name: ap.name ?? '', type, value: undefined };
    if (ap.refAttrName !== undefined) a.refAttrName = ap.refAttrName;
    if (ap.docString !== undefined) a.docString = ap.docString;
    if (ap.unknownFields?.length) a.codec = { unknownFields: ap.unknownFields };
    const sub = (gp: GraphProto) => {
      const sg = this.graph(gp, g);
      sg.ownerNode = owner;
      return sg;
    };
    let value: AttributeValue | undefined;
    switch (type) {
      case AttributeType.FLOAT: value = ap.f ?? 0; break;
      case AttributeType.INT: value = ap.i ?? 0; break;
      case AttributeType.STRING: value = ap.s ? stringOrBytes(ap.s) : ''; break;
      case AttributeType.TENSOR: value = ap.t ? tensorFromProto(ap.t, this.baseDir) : undefined; break;
      case AttributeType.GRAPH: value = ap.g ? sub(ap.g) : undefined; break;
      case AttributeType.SPARSE_TENSOR: value = ap.sparseTensor ? sparseFromProto(ap.sparseTensor, this.baseDir) : undefined; break;
      case AttributeType.TYPE_PROTO: value = typeFromProto(ap.tp); break;
      case AttributeType.FLOATS: value = [...ap.floats]; break;
      case AttributeType.INTS: value = [...ap.ints]; break;
      case AttributeType.STRINGS: value = ap.strings.map(stringOrBytes); break;
      case AttributeType.TENSORS: value = ap.tensors.map((t) => tensorFromProto(t, this.baseDir)); break;
      case AttributeType.GRAPHS: value = ap.graphs.map(sub); break;
      case AttributeType.SPARSE_TENSORS: value = ap.sparseTensors.map((s) => sparseFromProto(s, this.baseDir)); break;
      case AttributeType.TYPE_PROTOS: value = ap.typeProtos.map((t): ValueType => typeFromProto(t) ?? { kind: 'unknown' }); break;
      default: value = undefined;
    }
    a.value = value;
    return a;
  }

  func(p: FunctionProto): OnnxFunction {
    const f = new OnnxFunction(p.domain ?? '', p.name ?? '');
    f.overload = p.overload;
    for (const o of p.opsetImport) f.opsetImports.set(o.domain ?? '', toNumber(o.version, `function '${f.name}' opset_import`));
    f.attributeNames = [...p.attribute];
    f.attributeDefaults = p.attributeProto.map((a) => this.attribute(a, undefined, undefined));
    f.extras = extras(p.docString, p.metadataProps, p.unknownFields);
    const gp: GraphProto = {
      node: p.node,
      name: p.name,
      initializer: [],
      sparseInitializer: [],
      input: p.input.map((name) => ({ name, metadataProps: [] })),
      output: p.output.map((name) => ({ name, metadataProps: [] })),
      valueInfo: p.valueInfo,
      quantizationAnnotation: [],
      metadataProps: [],
    };
    f.body = this.graph(gp, undefined);
    for (const v of f.body.inputs) v.type = undefined;
    return f;
  }
}

function stringOrBytes(b: Uint8Array): string | Uint8Array {
  try {
    return textDecoder.decode(b); // the codec's decoder: keeps a leading U+FEFF, so re-encoding is exact
  } catch {
    return b;
  }
}

/** IR version 1 attributes have no `type`; infer it from the field that is set. */
function legacyAttributeType(a: AttributeProto): number {
  if (a.f !== undefined) return AttributeType.FLOAT;
  if (a.i !== undefined) return AttributeType.INT;
  if (a.s !== undefined) return AttributeType.STRING;
  if (a.t) return AttributeType.TENSOR;
  if (a.g) return AttributeType.GRAPH;
  if (a.sparseTensor) return AttributeType.SPARSE_TENSOR;
  if (a.tp) return AttributeType.TYPE_PROTO;
  if (a.floats.length) return AttributeType.FLOATS;
  if (a.ints.length) return AttributeType.INTS;
  if (a.strings.length) return AttributeType.STRINGS;
  if (a.tensors.length) return AttributeType.TENSORS;
  if (a.graphs.length) return AttributeType.GRAPHS;
  if (a.sparseTensors.length) return AttributeType.SPARSE_TENSORS;
  if (a.typeProtos.length) return AttributeType.TYPE_PROTOS;
  return AttributeType.UNDEFINED;
}
