import { createHash } from 'node:crypto';
import type { Graph } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import type { Attribute, AttributeValue, SparseTensor } from '../../src/ir/node.js';
import { Tensor } from '../../src/ir/tensor.js';
import { AttributeType } from '../../src/ir/types.js';

/**
 * A canonical text form of a model's IR, for "decode, encode, decode again gives an equal IR": every
 * field the IR carries (names, types, attributes, tensor bytes by hash, metadata, functions), written
 * in a fixed order. Two models are IR-equal when their canonical forms are equal strings.
 */
export function canonicalModel(m: Model): string {
  const out: string[] = [];
  out.push(`ir ${m.irVersion} producer ${m.producerName ?? '-'} ${m.producerVersion ?? '-'} domain ${m.domain ?? '-'} version ${String(m.modelVersion ?? '-')}`);
  out.push(`opsets ${[...m.opsetImports].map(([d, v]) => `${d}:${v}`).join(',')}`);
  out.push(`extras ${extrasText(m.extras)}`);
  out.push(...graphLines(m.graph, '  '));
  for (const f of m.functions) {
    out.push(`function ${f.domain}.${f.name} ${f.overload ?? ''} attrs ${f.attributeNames.join(',')} defaults ${f.attributeDefaults.map((a) => attrText(a, '')).join(';')} opsets ${[...f.opsetImports].map(([d, v]) => `${d}:${v}`).join(',')} ${extrasText(f.extras)}`);
    out.push(...graphLines(f.body, '    '));
  }
  for (const t of m.trainingInfo) {
    out.push(`training init-binding ${JSON.stringify(t.initializationBinding)} update-binding ${JSON.stringify(t.updateBinding)}`);
    if (t.initialization) out.push(...graphLines(t.initialization, '    '));
    if (t.algorithm) out.push(...graphLines(t.algorithm, '    '));
  }
  return out.join('\n');
}

function extrasText(e: { docString?: string; metadataProps?: Array<[string, string]>; codec?: Record<string, unknown> }): string {
  const unknown = (e.codec?.unknownFields as Uint8Array[] | undefined)?.map((b) => hash(b)).join(',') ?? '';
  const rest = e.codec ? Object.keys(e.codec).filter((k) => k !== 'unknownFields').map((k) => `${k}=${JSON.stringify(e.codec![k], big)}`).join(';') : '';
  return `doc=${JSON.stringify(e.docString ?? null)} meta=${JSON.stringify(e.metadataProps ?? [])} unknown=${unknown} ${rest}`;
}

function big(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `bytes:${hash(v)}`;
  return v;
}

function hash(b: Uint8Array): string {
  return createHash('sha1').update(b).digest('hex').slice(0, 16);
}

function tensorText(t: Tensor): string {
  const data = t.isString ? t.strings().map(hash).join('|') : hash(t.bytes());
  return `tensor(${t.name}:${t.dtype}[${t.dims.join(',')}] ${data} ${JSON.stringify({ d: t.extra.docString, m: t.extra.metadataProps, s: t.extra.segment }, big)})`;
}

function sparseText(s: SparseTensor): string {
  return `sparse(${tensorText(s.values)} ${tensorText(s.indices)} [${s.dims.join(',')}])`;
}

function valueText(v: AttributeValue | undefined, type: number, indent: string): string {
  if (v === undefined) return 'undefined';
  switch (type) {
    case AttributeType.TENSOR: return tensorText(v as Tensor);
    case AttributeType.TENSORS: return (v as Tensor[]).map(tensorText).join(';');
    case AttributeType.GRAPH: return `\n${graphLines(v as Graph, indent + '    ').join('\n')}`;
    case AttributeType.GRAPHS: return (v as Graph[]).map((g) => `\n${graphLines(g, indent + '    ').join('\n')}`).join('');
    case AttributeType.SPARSE_TENSOR: return sparseText(v as SparseTensor);
    case AttributeType.SPARSE_TENSORS: return (v as SparseTensor[]).map(sparseText).join(';');
    case AttributeType.FLOAT: return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : String(v);
    case AttributeType.FLOATS: return (v as number[]).map((x) => (Number.isNaN(x) ? 'NaN' : String(x))).join(',');
    default: return JSON.stringify(v, big);
  }
}

function attrText(a: Attribute, indent: string): string {
  return `${a.name}:${a.type}${a.refAttrName !== undefined ? `@${a.refAttrName}` : ''}${a.docString !== undefined ? `doc=${JSON.stringify(a.docString)}` : ''}=${valueText(a.value, a.type, indent)}`;
}

function graphLines(g: Graph, indent: string): string[] {
  const out: string[] = [];
  const typeText = (n: string) => JSON.stringify(g.values.get(n)?.type ?? g.lookup(n)?.type ?? null);
  out.push(`${indent}graph ${g.name} ${extrasText(g.extras)}`);
  out.push(`${indent}inputs ${g.inputs.map((v) => `${v.name}:${JSON.stringify(v.type ?? null)}:${extrasText(v.extras)}`).join(' ')}`);
  out.push(`${indent}outputs ${g.outputs.map((v) => `${v.name}:${JSON.stringify(v.type ?? null)}`).join(' ')}`);
  for (const n of g.initializerNames) out.push(`${indent}init ${n} ${tensorText(g.values.get(n)!.initializer!)}`);
  for (const n of g.sparseInitializerNames) out.push(`${indent}sparse-init ${n} ${sparseText(g.values.get(n)!.sparseInitializer!)}`);
  for (const node of g.nodes) {
    out.push(`${indent}node ${node.name} ${node.domain}.${node.opType} ${node.overload ?? ''} in(${node.inputs.map((v) => v?.name ?? '').join(',')}) out(${node.outputs.map((v) => v?.name ?? '').join(',')}) ${extrasText(node.extras)}`);
    for (const a of node.attributes.values()) out.push(`${indent}  attr ${attrText(a, indent)}`);
  }
  const vi = [...g.values.values()].filter((v) => v.hasValueInfo).map((v) => `${v.name}:${typeText(v.name)}`).sort();
  out.push(`${indent}value_info ${vi.join(' ')}`);
  out.push(`${indent}qa ${JSON.stringify(g.quantizationAnnotations)}`);
  return out;
}
