import { FrugalError } from '../errors.js';
import type { Graph } from '../ir/graph.js';
import type { Model, OnnxFunction } from '../ir/model.js';
import type { Attribute, Extras, Node, SparseTensor, Value } from '../ir/node.js';
import type { Tensor } from '../ir/tensor.js';
import { AttributeType, type ValueType } from '../ir/types.js';
import { encodeMessage, encodeMessageToBytes } from './proto.js';
import type {
  AttributeProto,
  FunctionProto,
  GraphProto,
  ModelProto,
  NodeProto,
  TensorProto,
  TypeProto,
  TypeProtoTensor,
  ValueInfoProto,
} from './proto-types.js';
import { entriesTo, sparseToProto, tensorToProto } from './tensor-codec.js';

/**
 * Decides, per initializer, whether its bytes go to an external file. Returns the reference to
 * write in the TensorProto, or undefined to keep the data inline.
 */
export type ExternalPlacer = (t: Tensor) => { location: string; offset: number; length: number } | undefined;

export interface EncodeOptions {
  /** Where large initializers go (see `saveModel`); default: inline, or as referenced. */
  placeExternal?: ExternalPlacer;
}

const enc = new TextEncoder();

/** Encodes a Model as a list of byte chunks (large tensors are views, never copied). */
export function encodeModel(model: Model, opts: EncodeOptions = {}): Uint8Array[] {
  return encodeMessage('ModelProto', modelToProto(model, opts));
}

/** Encodes a Model into one buffer (copies tensor data: for small models and ORT sessions). */
export function encodeModelToBytes(model: Model, opts: EncodeOptions = {}): Uint8Array {
  return encodeMessageToBytes('ModelProto', modelToProto(model, opts));
}

export function modelToProto(model: Model, opts: EncodeOptions = {}): ModelProto {
  const codec = model.extras.codec ?? {};
  const p: ModelProto = {
    irVersion: model.irVersion,
    opsetImport: [...model.opsetImports].map(([domain, version]) => ({ domain, version })),
    metadataProps: entriesTo(model.extras.metadataProps),
    trainingInfo: model.trainingInfo.map((t) => ({
      initialization: t.initialization ? graphToProto(t.initialization, opts) : undefined,
      algorithm: t.algorithm ? graphToProto(t.algorithm, opts) : undefined,
      initializationBinding: entriesTo(t.initializationBinding),
      updateBinding: entriesTo(t.updateBinding),
      unknownFields: unknownOf(t.extras),
    })),
    functions: model.functions.map((f) => functionToProto(f, opts)),
    configuration: (codec.configuration as ModelProto['configuration']) ?? [],
    graph: graphToProto(model.graph, opts),
  };
  if (model.producerName !== undefined) p.producerName = model.producerName;
  if (model.producerVersion !== undefined) p.producerVersion = model.producerVersion;
  if (model.domain !== undefined) p.domain = model.domain;
  if (model.modelVersion !== undefined) p.modelVersion = model.modelVersion;
  if (model.extras.docString !== undefined) p.docString = model.extras.docString;
  const unknown = unknownOf(model.extras);
  if (unknown) p.unknownFields = unknown;
  return p;
}

function unknownOf(e: Extras | { codec?: Record<string, unknown> }): Uint8Array[] | undefined {
  return (e.codec?.unknownFields as Uint8Array[] | undefined) ?? undefined;
}

export function typeToProto(t: ValueType | undefined): TypeProto | undefined {
  if (!t) return undefined;
  const p: TypeProto = {};
  if (t.denotation !== undefined) p.denotation = t.denotation;
  const tensorLike = (tt: { elemType: number; shape?: ValueType extends never ? never : Array<number | string | null>; dimDenotations?: Array<string | undefined> }): TypeProtoTensor => {
    const out: TypeProtoTensor = { elemType: tt.elemType };
    if (tt.shape) {
      out.shape = {
        dim: tt.shape.map((d, i) => {
          const dim: { dimValue?: number; dimParam?: string; denotation?: string } = {};
          if (typeof d === 'number') dim.dimValue = d;
          else if (typeof d === 'string') dim.dimParam = d;
          const den = tt.dimDenotations?.[i];
          if (den !== undefined) dim.denotation = den;
          return dim;
        }),
      };
    }
    return out;
  };
  switch (t.kind) {
    case 'tensor': p.tensorType = tensorLike(t); break;
    case 'sparse_tensor': p.sparseTensorType = tensorLike(t); break;
    case 'sequence': p.sequenceType = { elemType: typeToProto(t.elem) }; break;
    case 'map': p.mapType = { keyType: t.keyType, valueType: typeToProto(t.value) }; break;
    case 'optional': p.optionalType = { elemType: typeToProto(t.elem) }; break;
    case 'opaque': p.opaqueType = { domain: t.domain, name: t.name }; break;
    case 'unknown': break;
  }
  return p;
}

function valueInfo(g: Graph, v: Value, withType = true): ValueInfoProto {
  const p: ValueInfoProto = { name: v.name, metadataProps: entriesTo(v.extras.metadataProps) };
  if (withType && v.type) {
    const t = v.type;
    const shape = t.kind === 'tensor' || t.kind === 'sparse_tensor' ? t.shape : undefined;
    const i = shape?.findIndex((d) => typeof d === 'number' && !Number.isSafeInteger(d)) ?? -1;
    if (i >= 0) {
      // Named here, since the wire encoder below only knows it is some TensorShapeProto.Dimension.
      throw new FrugalError('E_INVALID_MODEL', `cannot encode graph '${g.name ?? ''}': value '${v.name}' has dimension ${i} = ${shape![i]}, not an integer (set by a pass or shape rule; this is a bug in frugal)`);
    }
    p.type = typeToProto(t);
  }
  if (v.extras.docString !== undefined) p.docString = v.extras.docString;
  const unknown = unknownOf(v.extras);
  if (unknown) p.unknownFields = unknown;
  return p;
}

export function graphToProto(g: Graph, opts: EncodeOptions): GraphProto {
  const io = new Set<Value>([...g.inputs, ...g.outputs]);
  const p: GraphProto = {
    node: g.nodes.map((n) => nodeToProto(n, opts)),
    initializer: g.initializers().map((v) => initializerToProto(v.initializer!, v.name, opts)),
    sparseInitializer: g.sparseInitializerNames.map((n) => sparseToProto(g.values.get(n)!.sparseInitializer as SparseTensor)),
    input: g.inputs.map((v) => valueInfo(g, v)),
    output: g.outputs.map((v) => valueInfo(g, v)),
    valueInfo: [...g.values.values()].filter((v) => v.hasValueInfo && !io.has(v)).map((v) => valueInfo(g, v)),
    quantizationAnnotation: g.quantizationAnnotations.map((a) => ({ tensorName: a.tensorName, quantParameterTensorNames: entriesTo(a.params) })),
    metadataProps: entriesTo(g.extras.metadataProps),
  };
  if (g.name !== undefined) p.name = g.name;
  if (g.extras.docString !== undefined) p.docString = g.extras.docString;
  const unknown = unknownOf(g.extras);
  if (unknown) p.unknownFields = unknown;
  return p;
}

function initializerToProto(t: Tensor, name: string, opts: EncodeOptions): TensorProto {
  if (t.name !== name) t.name = name;
  const ext = opts.placeExternal?.(t);
  return tensorToProto(t, ext);
}

function nodeToProto(n: Node, opts: EncodeOptions): NodeProto {
  const p: NodeProto = {
    input: n.inputs.map((v) => v?.name ?? ''),
    output: n.outputs.map((v) => v?.name ?? ''),
    opType: n.opType,
    attribute: [...n.attributes.values()].map((a) => attributeToProto(a, opts)),
    metadataProps: entriesTo(n.extras.metadataProps),
    deviceConfigurations: (n.extras.codec?.deviceConfigurations as NodeProto['deviceConfigurations']) ?? [],
  };
  if (n.name !== '') p.name = n.name;
  if (n.domain !== '') p.domain = n.domain;
  if (n.overload !== undefined) p.overload = n.overload;
  if (n.extras.docString !== undefined) p.docString = n.extras.docString;
  const unknown = unknownOf(n.extras);
  if (unknown) p.unknownFields = unknown;
  return p;
}

const strBytes = (s: string | Uint8Array): Uint8Array => (typeof s === 'string' ? enc.encode(s) : s);

function attributeToProto(a: Attribute, opts: EncodeOptions): AttributeProto {
  const p: AttributeProto = { name: a.name, type: a.type, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
  if (a.refAttrName !== undefined) p.refAttrName = a.refAttrName;
  if (a.docString !== undefined) p.docString = a.docString;
  const unknown = a.codec?.unknownFields as Uint8Array[] | undefined;
  if (unknown) p.unknownFields = unknown;
  const v = a.value;
  if (v === undefined) return p;
  switch (a.type) {
    case AttributeType.FLOAT: p.f = v as number; break;
    case AttributeType.INT: p.i = v as number | bigint; break;
    case AttributeType.STRING: p.s = strBytes(v as string | Uint8Array); break;
    case AttributeType.TENSOR: p.t = tensorToProto(v as Tensor); break;
    case AttributeType.GRAPH: p.g = graphToProto(v as Graph, opts); break;
    case AttributeType.SPARSE_TENSOR: p.sparseTensor = sparseToProto(v as SparseTensor); break;
    case AttributeType.TYPE_PROTO: p.tp = typeToProto(v as ValueType); break;
    case AttributeType.FLOATS: p.floats = [...(v as number[])]; break;
    case AttributeType.INTS: p.ints = [...(v as Array<number | bigint>)]; break;
    case AttributeType.STRINGS: p.strings = (v as Array<string | Uint8Array>).map(strBytes); break;
    case AttributeType.TENSORS: p.tensors = (v as Tensor[]).map((t) => tensorToProto(t)); break;
    case AttributeType.GRAPHS: p.graphs = (v as Graph[]).map((g) => graphToProto(g, opts)); break;
    case AttributeType.SPARSE_TENSORS: p.sparseTensors = (v as SparseTensor[]).map(sparseToProto); break;
    case AttributeType.TYPE_PROTOS: p.typeProtos = (v as ValueType[]).map((t) => typeToProto(t) ?? {}); break;
  }
  return p;
}

function functionToProto(f: OnnxFunction, opts: EncodeOptions): FunctionProto {
  const body = graphToProto(f.body, opts);
  const p: FunctionProto = {
    name: f.name,
    input: f.body.inputs.map((v) => v.name),
    output: f.body.outputs.map((v) => v.name),
    attribute: [...f.attributeNames],
    attributeProto: f.attributeDefaults.map((a) => attributeToProto(a, opts)),
    node: body.node,
    opsetImport: [...f.opsetImports].map(([domain, version]) => ({ domain, version })),
    valueInfo: body.valueInfo,
    metadataProps: entriesTo(f.extras.metadataProps),
  };
  if (f.domain !== undefined) p.domain = f.domain;
  if (f.overload !== undefined) p.overload = f.overload;
  if (f.extras.docString !== undefined) p.docString = f.extras.docString;
  const unknown = unknownOf(f.extras);
  if (unknown) p.unknownFields = unknown;
  return p;
}
