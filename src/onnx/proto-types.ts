/**
 * Plain-object mirrors of the ONNX protobuf messages (onnx.proto, onnx-data.proto, IR version 13).
 *
 * These are what the wire codec (`proto.ts` + `schema.ts`) decodes to and encodes from; only `src/onnx/`
 * sees them. Field names are the proto names in camelCase. Conventions:
 * - An absent optional scalar field is `undefined` (proto2 presence is kept, so re-encoding writes
 *   exactly the fields that were present).
 * - Repeated fields are always present as arrays (possibly empty) after decode; the encoder accepts them
 *   missing.
 * - int64/uint64 values are `Int64`: a JS number when it is a safe integer, a bigint otherwise, so values
 *   such as INT64_MAX (Slice ends) round-trip exactly.
 * - `bytes` fields are Uint8Array views into the decoded buffer (no copy).
 * - Large packed numeric fields of TensorProto are typed arrays (copies: they may be unaligned).
 * - `unknownFields` holds the raw wire bytes (tag included) of every field the schema does not know,
 *   in order; the encoder writes them back after the known fields.
 */

export type Int64 = number | bigint;

export interface ProtoBase {
  unknownFields?: Uint8Array[];
}

export interface StringStringEntryProto extends ProtoBase {
  key?: string;
  value?: string;
}

export interface OperatorSetIdProto extends ProtoBase {
  domain?: string;
  version?: Int64;
}

export interface TensorSegment extends ProtoBase {
  begin?: Int64;
  end?: Int64;
}

export interface TensorProto extends ProtoBase {
  dims: Int64[];
  dataType?: number;
  segment?: TensorSegment;
  floatData: Float32Array;
  int32Data: Int32Array;
  stringData: Uint8Array[];
  int64Data: BigInt64Array;
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData: StringStringEntryProto[];
  /** 0 = DEFAULT, 1 = EXTERNAL */
  dataLocation?: number;
  doubleData: Float64Array;
  uint64Data: BigUint64Array;
  metadataProps: StringStringEntryProto[];
}

export interface SparseTensorProto extends ProtoBase {
  values?: TensorProto;
  indices?: TensorProto;
  dims: Int64[];
}

export interface TensorShapeDimension extends ProtoBase {
  dimValue?: Int64;
  dimParam?: string;
  denotation?: string;
}

export interface TensorShapeProto extends ProtoBase {
  dim: TensorShapeDimension[];
}

export interface TypeProtoTensor extends ProtoBase {
  elemType?: number;
  shape?: TensorShapeProto;
}
export interface TypeProtoSequence extends ProtoBase {
  elemType?: TypeProto;
}
export interface TypeProtoMap extends ProtoBase {
  keyType?: number;
  valueType?: TypeProto;
}
export interface TypeProtoOptional extends ProtoBase {
  elemType?: TypeProto;
}
export interface TypeProtoOpaque extends ProtoBase {
  domain?: string;
  name?: string;
}

export interface TypeProto extends ProtoBase {
  tensorType?: TypeProtoTensor;
  sequenceType?: TypeProtoSequence;
  mapType?: TypeProtoMap;
  optionalType?: TypeProtoOptional;
  sparseTensorType?: TypeProtoTensor;
  opaqueType?: TypeProtoOpaque;
  denotation?: string;
}

export interface ValueInfoProto extends ProtoBase {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringStringEntryProto[];
}

export interface AttributeProto extends ProtoBase {
  name?: string;
  refAttrName?: string;
  docString?: string;
  /** AttributeProto.AttributeType */
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  tp?: TypeProto;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparseTensors: SparseTensorProto[];
  typeProtos: TypeProto[];
}

export interface SimpleShardedDimProto extends ProtoBase {
  dimValue?: Int64;
  dimParam?: string;
  numShards?: Int64;
}
export interface ShardedDimProto extends ProtoBase {
  axis?: Int64;
  simpleSharding: SimpleShardedDimProto[];
}
export interface IntIntListEntryProto extends ProtoBase {
  key?: Int64;
  value: Int64[];
}
export interface ShardingSpecProto extends ProtoBase {
  tensorName?: string;
  device: Int64[];
  indexToDeviceGroupMap: IntIntListEntryProto[];
  shardedDim: ShardedDimProto[];
}
export interface NodeDeviceConfigurationProto extends ProtoBase {
  configurationId?: string;
  shardingSpec: ShardingSpecProto[];
  pipelineStage?: number;
}
export interface DeviceConfigurationProto extends ProtoBase {
  name?: string;
  numDevices?: number;
  device: string[];
}

export interface NodeProto extends ProtoBase {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute: AttributeProto[];
  docString?: string;
  metadataProps: StringStringEntryProto[];
  deviceConfigurations: NodeDeviceConfigurationProto[];
}

export interface TensorAnnotation extends ProtoBase {
  tensorName?: string;
  quantParameterTensorNames: StringStringEntryProto[];
}

export interface GraphProto extends ProtoBase {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  sparseInitializer: SparseTensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation: TensorAnnotation[];
  metadataProps: StringStringEntryProto[];
}

export interface TrainingInfoProto extends ProtoBase {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initializationBinding: StringStringEntryProto[];
  updateBinding: StringStringEntryProto[];
}

export interface FunctionProto extends ProtoBase {
  name?: string;
  input: string[];
  output: string[];
  attribute: string[];
  attributeProto: AttributeProto[];
  node: NodeProto[];
  docString?: string;
  opsetImport: OperatorSetIdProto[];
  domain?: string;
  overload?: string;
  valueInfo: ValueInfoProto[];
  metadataProps: StringStringEntryProto[];
}

export interface ModelProto extends ProtoBase {
  irVersion?: Int64;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: GraphProto;
  metadataProps: StringStringEntryProto[];
  trainingInfo: TrainingInfoProto[];
  functions: FunctionProto[];
  configuration: DeviceConfigurationProto[];
}

// onnx-data.proto: the containers the conformance suite uses for non-tensor inputs and outputs.
export interface MapProto extends ProtoBase {
  name?: string;
  keyType?: number;
  keys: Int64[];
  stringKeys: Uint8Array[];
  values?: SequenceProto;
}
export interface OptionalProto extends ProtoBase {
  name?: string;
  elemType?: number;
  tensorValue?: TensorProto;
  sparseTensorValue?: SparseTensorProto;
  sequenceValue?: SequenceProto;
  mapValue?: MapProto;
  optionalValue?: OptionalProto;
}
export interface SequenceProto extends ProtoBase {
  name?: string;
  elemType?: number;
  tensorValues: TensorProto[];
  sparseTensorValues: SparseTensorProto[];
  sequenceValues: SequenceProto[];
  mapValues: MapProto[];
  optionalValues: OptionalProto[];
}

/** Names of the messages the schema table describes; `decodeMessage`/`encodeMessage` take one. */
export interface MessageTypes {
  ModelProto: ModelProto;
  GraphProto: GraphProto;
  NodeProto: NodeProto;
  AttributeProto: AttributeProto;
  TensorProto: TensorProto;
  SparseTensorProto: SparseTensorProto;
  TypeProto: TypeProto;
  ValueInfoProto: ValueInfoProto;
  FunctionProto: FunctionProto;
  TrainingInfoProto: TrainingInfoProto;
  SequenceProto: SequenceProto;
  MapProto: MapProto;
  OptionalProto: OptionalProto;
}
export type MessageName = keyof MessageTypes;
