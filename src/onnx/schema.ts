/**
 * The ONNX protobuf schema as data: onnx.proto (syntax proto2, IR version 13) and onnx-data.proto.
 * `proto.ts` walks this table to decode and encode; adding a field to ONNX means adding one row here
 * (and the property in `proto-types.ts`).
 *
 * Field numbers were checked against onnx/onnx's onnx.proto and onnx-data.proto. Nested proto messages
 * are named `Outer.Inner` (e.g. `TypeProto.Tensor`); in `proto-types.ts` they are `TypeProtoTensor`,
 * `TensorSegment`, `TensorShapeDimension`, ...
 *
 * Row syntax: [number, camelCaseName, type, typedArray?]. `type` is a scalar kind or a message name;
 * a leading `*` makes the field repeated. A row with a typed array is a packed repeated numeric field
 * of TensorProto: decoded into that typed array, encoded packed (proto2 `[packed = true]`). Every other
 * repeated scalar is encoded unpacked, as proto2 does by default; the decoder accepts both forms.
 */
import { FrugalError } from '../errors.js';

export type ScalarKind = 'int32' | 'int64' | 'uint64' | 'float' | 'double' | 'string' | 'bytes' | 'enum';
export type FieldKind = ScalarKind | 'message';
/** Typed array used for a packed numeric TensorProto field. */
export type TypedArrayKind = 'float32' | 'int32' | 'bigint64' | 'float64' | 'biguint64';

export interface FieldSchema {
  readonly number: number;
  /** camelCase property name in proto-types.ts. */
  readonly name: string;
  /** snake_case name as in onnx.proto, used in error messages. */
  readonly protoName: string;
  readonly kind: FieldKind;
  readonly repeated: boolean;
  /** Encode as one packed length-delimited record (decode accepts packed and unpacked regardless). */
  readonly packed: boolean;
  /** For kind 'message': the schema name of the element type. */
  readonly messageType?: string;
  readonly typedArray?: TypedArrayKind;
}

export interface MessageSchema {
  readonly name: string;
  /** Sorted by field number: the order the encoder writes them, as protobuf's serializers do. */
  readonly fields: readonly FieldSchema[];
  /** Index = field number; undefined for numbers the schema does not know. */
  readonly byNumber: readonly (FieldSchema | undefined)[];
}

type Row = readonly [number, string, string, TypedArrayKind?];

const SSE = '*StringStringEntryProto';

const ROWS: Record<string, readonly Row[]> = {
  ModelProto: [
    [1, 'irVersion', 'int64'], [2, 'producerName', 'string'], [3, 'producerVersion', 'string'],
    [4, 'domain', 'string'], [5, 'modelVersion', 'int64'], [6, 'docString', 'string'],
    [7, 'graph', 'GraphProto'], [8, 'opsetImport', '*OperatorSetIdProto'], [14, 'metadataProps', SSE],
    [20, 'trainingInfo', '*TrainingInfoProto'], [25, 'functions', '*FunctionProto'],
    [26, 'configuration', '*DeviceConfigurationProto'],
  ],
  OperatorSetIdProto: [[1, 'domain', 'string'], [2, 'version', 'int64']],
  StringStringEntryProto: [[1, 'key', 'string'], [2, 'value', 'string']],
  GraphProto: [
    [1, 'node', '*NodeProto'], [2, 'name', 'string'], [5, 'initializer', '*TensorProto'],
    [10, 'docString', 'string'], [11, 'input', '*ValueInfoProto'], [12, 'output', '*ValueInfoProto'],
    [13, 'valueInfo', '*ValueInfoProto'], [14, 'quantizationAnnotation', '*TensorAnnotation'],
    [15, 'sparseInitializer', '*SparseTensorProto'], [16, 'metadataProps', SSE],
  ],
  TensorAnnotation: [[1, 'tensorName', 'string'], [2, 'quantParameterTensorNames', SSE]],
  NodeProto: [
    [1, 'input', '*string'], [2, 'output', '*string'], [3, 'name', 'string'], [4, 'opType', 'string'],
    [5, 'attribute', '*AttributeProto'], [6, 'docString', 'string'], [7, 'domain', 'string'],
    [8, 'overload', 'string'], [9, 'metadataProps', SSE],
    [10, 'deviceConfigurations', '*NodeDeviceConfigurationProto'],
  ],
  AttributeProto: [
    [1, 'name', 'string'], [2, 'f', 'float'], [3, 'i', 'int64'], [4, 's', 'bytes'], [5, 't', 'TensorProto'],
    [6, 'g', 'GraphProto'], [7, 'floats', '*float'], [8, 'ints', '*int64'], [9, 'strings', '*bytes'],
    [10, 'tensors', '*TensorProto'], [11, 'graphs', '*GraphProto'], [13, 'docString', 'string'],
    [14, 'tp', 'TypeProto'], [15, 'typeProtos', '*TypeProto'], [20, 'type', 'enum'],
    [21, 'refAttrName', 'string'], [22, 'sparseTensor', 'SparseTensorProto'],
    [23, 'sparseTensors', '*SparseTensorProto'],
  ],
  ValueInfoProto: [
    [1, 'name', 'string'], [2, 'type', 'TypeProto'], [3, 'docString', 'string'], [4, 'metadataProps', SSE],
  ],
  TensorProto: [
    [1, 'dims', '*int64'], [2, 'dataType', 'int32'], [3, 'segment', 'TensorProto.Segment'],
    [4, 'floatData', '*float', 'float32'], [5, 'int32Data', '*int32', 'int32'], [6, 'stringData', '*bytes'],
    [7, 'int64Data', '*int64', 'bigint64'], [8, 'name', 'string'], [9, 'rawData', 'bytes'],
    [10, 'doubleData', '*double', 'float64'], [11, 'uint64Data', '*uint64', 'biguint64'],
    [12, 'docString', 'string'], [13, 'externalData', SSE], [14, 'dataLocation', 'enum'],
    [16, 'metadataProps', SSE],
  ],
  'TensorProto.Segment': [[1, 'begin', 'int64'], [2, 'end', 'int64']],
  SparseTensorProto: [[1, 'values', 'TensorProto'], [2, 'indices', 'TensorProto'], [3, 'dims', '*int64']],
  TensorShapeProto: [[1, 'dim', '*TensorShapeProto.Dimension']],
  'TensorShapeProto.Dimension': [[1, 'dimValue', 'int64'], [2, 'dimParam', 'string'], [3, 'denotation', 'string']],
  TypeProto: [
    [1, 'tensorType', 'TypeProto.Tensor'], [4, 'sequenceType', 'TypeProto.Sequence'],
    [5, 'mapType', 'TypeProto.Map'], [6, 'denotation', 'string'], [7, 'opaqueType', 'TypeProto.Opaque'],
    [8, 'sparseTensorType', 'TypeProto.SparseTensor'], [9, 'optionalType', 'TypeProto.Optional'],
  ],
  'TypeProto.Tensor': [[1, 'elemType', 'int32'], [2, 'shape', 'TensorShapeProto']],
  'TypeProto.Sequence': [[1, 'elemType', 'TypeProto']],
  'TypeProto.Map': [[1, 'keyType', 'int32'], [2, 'valueType', 'TypeProto']],
  'TypeProto.Optional': [[1, 'elemType', 'TypeProto']],
  'TypeProto.SparseTensor': [[1, 'elemType', 'int32'], [2, 'shape', 'TensorShapeProto']],
  'TypeProto.Opaque': [[1, 'domain', 'string'], [2, 'name', 'string']],
  TrainingInfoProto: [
    [1, 'initialization', 'GraphProto'], [2, 'algorithm', 'GraphProto'],
    [3, 'initializationBinding', SSE], [4, 'updateBinding', SSE],
  ],
  FunctionProto: [
    [1, 'name', 'string'], [4, 'input', '*string'], [5, 'output', '*string'], [6, 'attribute', '*string'],
    [7, 'node', '*NodeProto'], [8, 'docString', 'string'], [9, 'opsetImport', '*OperatorSetIdProto'],
    [10, 'domain', 'string'], [11, 'attributeProto', '*AttributeProto'], [12, 'valueInfo', '*ValueInfoProto'],
    [13, 'overload', 'string'], [14, 'metadataProps', SSE],
  ],
  DeviceConfigurationProto: [[1, 'name', 'string'], [2, 'numDevices', 'int32'], [3, 'device', '*string']],
  NodeDeviceConfigurationProto: [
    [1, 'configurationId', 'string'], [2, 'shardingSpec', '*ShardingSpecProto'], [3, 'pipelineStage', 'int32'],
  ],
  ShardingSpecProto: [
    [1, 'tensorName', 'string'], [2, 'device', '*int64'],
    [3, 'indexToDeviceGroupMap', '*IntIntListEntryProto'], [4, 'shardedDim', '*ShardedDimProto'],
  ],
  IntIntListEntryProto: [[1, 'key', 'int64'], [2, 'value', '*int64']],
  ShardedDimProto: [[1, 'axis', 'int64'], [2, 'simpleSharding', '*SimpleShardedDimProto']],
  SimpleShardedDimProto: [[1, 'dimValue', 'int64'], [2, 'dimParam', 'string'], [3, 'numShards', 'int64']],
  // onnx-data.proto
  SequenceProto: [
    [1, 'name', 'string'], [2, 'elemType', 'int32'], [3, 'tensorValues', '*TensorProto'],
    [4, 'sparseTensorValues', '*SparseTensorProto'], [5, 'sequenceValues', '*SequenceProto'],
    [6, 'mapValues', '*MapProto'], [7, 'optionalValues', '*OptionalProto'],
  ],
  MapProto: [
    [1, 'name', 'string'], [2, 'keyType', 'int32'], [3, 'keys', '*int64'], [4, 'stringKeys', '*bytes'],
    [5, 'values', 'SequenceProto'],
  ],
  OptionalProto: [
    [1, 'name', 'string'], [2, 'elemType', 'int32'], [3, 'tensorValue', 'TensorProto'],
    [4, 'sparseTensorValue', 'SparseTensorProto'], [5, 'sequenceValue', 'SequenceProto'],
    [6, 'mapValue', 'MapProto'], [7, 'optionalValue', 'OptionalProto'],
  ],
};

const SCALARS: ReadonlySet<string> = new Set<ScalarKind>(['int32', 'int64', 'uint64', 'float', 'double', 'string', 'bytes', 'enum']);

function toSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

function buildMessage(name: string, rows: readonly Row[]): MessageSchema {
  const fields = rows
    .map(([number, fieldName, type, typedArray]): FieldSchema => {
      const repeated = type.startsWith('*');
      const base = repeated ? type.slice(1) : type;
      const isScalar = SCALARS.has(base);
      if (!isScalar && !(base in ROWS)) throw new FrugalError('E_INTERNAL', `schema: ${name}.${fieldName} names unknown message ${base}`);
      const field: FieldSchema = {
        number,
        name: fieldName,
        protoName: toSnake(fieldName),
        kind: isScalar ? (base as ScalarKind) : 'message',
        repeated,
        packed: typedArray !== undefined,
        ...(isScalar ? {} : { messageType: base }),
        ...(typedArray === undefined ? {} : { typedArray }),
      };
      return Object.freeze(field);
    })
    .sort((a, b) => a.number - b.number);
  const byNumber: (FieldSchema | undefined)[] = new Array(fields[fields.length - 1]!.number + 1).fill(undefined);
  for (const f of fields) {
    if (byNumber[f.number] !== undefined) throw new FrugalError('E_INTERNAL', `schema: ${name} uses field number ${f.number} twice`);
    byNumber[f.number] = f;
  }
  return Object.freeze({ name, fields: Object.freeze(fields), byNumber: Object.freeze(byNumber) });
}

/** Every message the codec knows, by schema name. Frozen: the table is data, not state. */
export const SCHEMA: Readonly<Record<string, MessageSchema>> = Object.freeze(
  Object.fromEntries(Object.entries(ROWS).map(([name, rows]) => [name, buildMessage(name, rows)])),
);

