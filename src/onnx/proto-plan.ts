/**
 * The codec's view of the schema table: per message, its fields with wire types precomputed (shared by
 * `proto-decode.ts` and `proto-encode.ts`).
 */
import { FrugalError } from '../errors.js';
import { SCHEMA, type FieldSchema, type MessageSchema } from './schema.js';
import { LITTLE_ENDIAN, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, varintSize32 } from './wire.js';

/** Deepest message nesting accepted (protobuf's own default recursion limit). */
export const MAX_DEPTH = 100;

export type Obj = Record<string, unknown>;

/** A schema field with what the codec needs precomputed. */
export interface PlanField extends FieldSchema {
  /** Wire type of one (unpacked) element. */
  readonly wireType: number;
  readonly tag: number;
  readonly tagSize: number;
  /** Set for message fields once all plans exist. */
  child: Plan | undefined;
}
export interface Plan {
  readonly name: string;
  readonly fields: readonly PlanField[];
  readonly byNumber: readonly (PlanField | undefined)[];
  readonly repeated: readonly PlanField[];
  readonly typed: readonly PlanField[];
}

const WIRE_OF: Record<string, number> = {
  int32: WIRE_VARINT, int64: WIRE_VARINT, uint64: WIRE_VARINT, enum: WIRE_VARINT,
  float: WIRE_FIXED32, double: WIRE_FIXED64, string: WIRE_LEN, bytes: WIRE_LEN, message: WIRE_LEN,
};

function buildPlans(schemas: Readonly<Record<string, MessageSchema>>): Record<string, Plan> {
  const plans: Record<string, Plan> = {};
  for (const [name, s] of Object.entries(schemas)) {
    const fields = s.fields.map((f): PlanField => {
      const wireType = WIRE_OF[f.kind]!;
      const tag = ((f.number << 3) | (f.packed ? WIRE_LEN : wireType)) >>> 0;
      return { ...f, wireType, tag, tagSize: varintSize32(tag), child: undefined };
    });
    const byNumber: (PlanField | undefined)[] = s.byNumber.map((f) => (f ? fields.find((p) => p.number === f.number) : undefined));
    plans[name] = {
      name, fields, byNumber,
      repeated: fields.filter((f) => f.repeated),
      typed: fields.filter((f) => f.typedArray !== undefined),
    };
  }
  for (const p of Object.values(plans)) for (const f of p.fields) if (f.messageType) f.child = plans[f.messageType];
  return plans;
}

export const PLANS = buildPlans(SCHEMA);



/** The plan of a message by schema name (E_USAGE for an unknown name). */
export function planFor(name: string): Plan {
  const plan = PLANS[name];
  if (plan === undefined) throw new FrugalError('E_USAGE', `ONNX schema has no message named ${name}`);
  if (!LITTLE_ENDIAN) throw new FrugalError('E_UNSUPPORTED', 'the ONNX codec needs a little-endian host');
  return plan;
}
