import { dataTypeName } from './dtype.js';

/**
 * A dimension: a fixed size, a symbolic name (`batch`, `seq`), or `null` when nothing is known.
 */
export type Dim = number | string | null;
export type Shape = Dim[];

/**
 * The type of a value, as ONNX's TypeProto describes it. `shape` undefined means the rank is unknown;
 * `[]` means a scalar. Denotations are carried for fidelity; nothing in Frugal interprets them.
 */
export type ValueType =
  | { kind: 'tensor'; elemType: number; shape?: Shape; denotation?: string; dimDenotations?: Array<string | undefined> }
  | { kind: 'sparse_tensor'; elemType: number; shape?: Shape; denotation?: string; dimDenotations?: Array<string | undefined> }
  | { kind: 'sequence'; elem?: ValueType; denotation?: string }
  | { kind: 'map'; keyType: number; value?: ValueType; denotation?: string }
  | { kind: 'optional'; elem?: ValueType; denotation?: string }
  | { kind: 'opaque'; domain?: string; name?: string; denotation?: string }
  /** A TypeProto with no type set (allowed in function and subgraph signatures). */
  | { kind: 'unknown'; denotation?: string };

export function tensorType(elemType: number, shape?: Shape): ValueType {
  return shape === undefined ? { kind: 'tensor', elemType } : { kind: 'tensor', elemType, shape: [...shape] };
}

/** Element type of a tensor (or sparse tensor) type, else undefined. */
export function elemTypeOf(t: ValueType | undefined): number | undefined {
  return t && (t.kind === 'tensor' || t.kind === 'sparse_tensor') ? t.elemType : undefined;
}

/** Shape of a tensor type, else undefined. */
export function shapeOf(t: ValueType | undefined): Shape | undefined {
  return t && (t.kind === 'tensor' || t.kind === 'sparse_tensor') ? t.shape : undefined;
}

/** True when every dimension is a known number. */
export function isStaticShape(s: Shape | undefined): s is number[] {
  return s !== undefined && s.every((d) => typeof d === 'number');
}

export function formatShape(s: Shape | undefined): string {
  if (s === undefined) return '?';
  return `[${s.map((d) => (d === null ? '?' : String(d))).join(',')}]`;
}

/** Human-readable type, e.g. `float32[batch,784]`, `seq(float32[?])`. */
export function formatType(t: ValueType | undefined): string {
  if (!t) return '?';
  switch (t.kind) {
    case 'tensor':
      return `${dataTypeName(t.elemType)}${formatShape(t.shape)}`;
    case 'sparse_tensor':
      return `sparse(${dataTypeName(t.elemType)}${formatShape(t.shape)})`;
    case 'sequence':
      return `seq(${formatType(t.elem)})`;
    case 'map':
      return `map(${dataTypeName(t.keyType)},${formatType(t.value)})`;
    case 'optional':
      return `optional(${formatType(t.elem)})`;
    case 'opaque':
      return `opaque(${t.domain ?? ''}.${t.name ?? ''})`;
    case 'unknown':
      return '?';
  }
}

/** ONNX AttributeProto.AttributeType. */
export const AttributeType = Object.freeze({
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const);
