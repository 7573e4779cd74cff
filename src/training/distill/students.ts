/**
 * Students for distillation, from a spec string:
 *
 * - a zoo spec: `cnn:channels=16/24,hidden=64` or `transformer-tiny:layers=1,hidden=32,ffn=64` (lists
 *   with `/`); a transformer student takes the teacher's vocabulary, positions and tokenizer unless told
 *   otherwise, so both read the same token ids;
 * - an ONNX file (trained further as it is);
 * - derived from the teacher (a Frugal zoo CNN or transformer), steps joined by `+`:
 *   `drop-layers` keeps every other encoder layer (0, 2, 4, ..., DistilBERT's initialization),
 *   `keep-layers=0/3` keeps the listed ones, and `width=0.5` keeps that share of the channels, hidden
 *   units, attention dimensions and FFN units: the ones with the largest weight norms (the L1
 *   structured-pruning importance), sliced out of the teacher's weights. Layers kept whole carry the
 *   teacher's weights byte for byte.
 */
import { existsSync } from 'node:fs';
import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import { loadModel } from '../../onnx/index.js';
import { buildCnn, buildTransformerEncoder, buildZooModel, ZOO, zooNames } from '../../zoo/index.js';
import { type Family, loadWeights, readFamily, type Weight } from './families.js';

/** A built student and what it is. */
export interface Student {
  model: Model;
  /** `zoo`, `file` or `derived`. */
  source: 'zoo' | 'file' | 'derived';
  description: string;
}

/** Derivation steps of a `derived` student spec. */
export interface DeriveSteps {
  /** Encoder layers to keep (teacher indices, ascending). `'alternate'`: 0, 2, 4, ... */
  keepLayers?: number[] | 'alternate';
  /** Share of widths to keep, in (0, 1]. */
  width?: number;
}

/** Parses `drop-layers`, `keep-layers=0/2`, `width=0.5` (joined by `+`); undefined when `spec` is none of them. */
export function parseDeriveSpec(spec: string): DeriveSteps | undefined {
  const steps: DeriveSteps = {};
  for (const part of spec.split('+')) {
    const [key, value] = part.split('=', 2) as [string, string | undefined];
    if (key === 'drop-layers' && value === undefined) steps.keepLayers = 'alternate';
    else if (key === 'keep-layers' && value) {
      const ids = value.split('/').map(Number);
      if (ids.some((x) => !Number.isInteger(x) || x < 0)) throw new FrugalError('E_USAGE', `--student keep-layers=${value}: give layer indices like keep-layers=0/2`);
      steps.keepLayers = [...new Set(ids)].sort((a, b) => a - b);
    } else if (key === 'width' && value) {
      const w = Number(value);
      if (!(w > 0 && w <= 1)) throw new FrugalError('E_USAGE', `--student width=${value}: the width must be a number in (0, 1], e.g. width=0.5`);
      steps.width = w;
    } else return undefined;
  }
  return steps;
}

/** Parses a zoo spec `name[:key=value,...]` (list values with `/`); undefined when the name is not a zoo model. */
export function parseZooSpec(spec: string): { name: string; overrides: Record<string, unknown> } | undefined {
  const [name, rest] = spec.split(/:(.*)/s, 2) as [string, string | undefined];
  if (!Object.hasOwn(ZOO, name)) return undefined;
  const overrides: Record<string, unknown> = {};
  for (const kv of rest ? rest.split(',') : []) {
    const [k, v] = kv.split('=', 2) as [string, string | undefined];
    if (!k || v === undefined || v === '') throw new FrugalError('E_USAGE', `--student '${spec}': '${kv}' is not key=value (e.g. ${name}:layers=1,hidden=32)`);
    const num = (s: string): number | string => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);
    overrides[k] = v.includes('/') ? v.split('/').map(num) : num(v);
  }
  return { name, overrides };
}

/**
 * Builds the student that `spec` names for `teacher`; see the module comment for the forms. Throws
 * E_USAGE for a spec that is none of them, E_UNSUPPORTED for a derivation the teacher does not allow.
 */
export async function buildStudent(teacher: Model, spec: string, opts: { seed?: number } = {}): Promise<Student> {
  const derive = parseDeriveSpec(spec);
  if (derive) {
    const family = deriveFamily(readFamily(teacher), derive);
    return { model: buildFromFamily(family, teacher), source: 'derived', description: `${spec} of the teacher (${describe(family)})` };
  }
  const zoo = parseZooSpec(spec);
  if (zoo) {
    const overrides: Record<string, unknown> = { ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...zoo.overrides };
    let model: Model;
    if (zoo.name.startsWith('transformer') || zoo.name === 'bert-base') {
      // Same vocabulary and positions as the teacher, so that both read the teacher's token ids.
      let family: Family | undefined;
      try {
        family = readFamily(teacher);
      } catch {
        family = undefined;
      }
      const inherit = family?.kind === 'transformer' ? { vocabSize: family.config.vocabSize, maxLength: family.config.maxLength } : {};
      model = buildZooModel(zoo.name, { ...inherit, ...overrides });
      if (family?.kind === 'transformer' && (overrides.vocabSize ?? family.config.vocabSize) === family.config.vocabSize) copyMetadata(teacher, model);
    } else model = buildZooModel(zoo.name, overrides);
    return { model, source: 'zoo', description: spec };
  }
  if (/\.onnx$/i.test(spec) || existsSync(spec)) {
    if (!existsSync(spec)) throw new FrugalError('E_USAGE', `--student '${spec}': no such file`);
    return { model: await loadModel(spec), source: 'file', description: spec };
  }
  throw new FrugalError('E_USAGE', `--student '${spec}' is not a zoo spec (${zooNames().join(', ')}, e.g. cnn:channels=16/24), an .onnx file, or a derivation (drop-layers, keep-layers=0/2, width=0.5, joined by +)`);
}

function describe(f: Family): string {
  const c = f.config;
  return f.kind === 'cnn' ? `channels ${(c as { channels: number[] }).channels.join('/')}, hidden ${(c as { hidden: number }).hidden}` : `layers ${(c as { layers: number }).layers}, hidden ${c.hidden}, heads ${(c as { heads: number }).heads}, ffn ${(c as { ffn: number }).ffn}`;
}

function copyMetadata(from: Model, to: Model): void {
  if (from.extras.metadataProps) to.extras.metadataProps = from.extras.metadataProps.map(([k, v]) => [k, v] as [string, string]);
}

/** Applies the derivation steps to a teacher family: layers first, then widths. */
export function deriveFamily(teacher: Family, steps: DeriveSteps): Family {
  let f = teacher;
  if (steps.keepLayers !== undefined) {
    if (f.kind !== 'transformer') throw new FrugalError('E_UNSUPPORTED', 'layer dropping applies to transformer encoders; for a CNN teacher use width=<share> or a zoo spec like cnn:channels=16/24');
    f = dropLayers(f, steps.keepLayers);
  }
  if (steps.width !== undefined && steps.width < 1) f = f.kind === 'cnn' ? narrowCnn(f, steps.width) : narrowTransformer(f, steps.width);
  return f;
}

function buildFromFamily(f: Family, teacher: Model): Model {
  const model = f.kind === 'cnn' ? buildCnn(f.config) : buildTransformerEncoder(f.config);
  loadWeights(model, f.weights);
  copyMetadata(teacher, model);
  return model;
}

type TransformerFamily = Extract<Family, { kind: 'transformer' }>;
type CnnFamily = Extract<Family, { kind: 'cnn' }>;

function dropLayers(f: TransformerFamily, keep: number[] | 'alternate'): TransformerFamily {
  const n = f.config.layers;
  const ids = keep === 'alternate' ? Array.from({ length: Math.ceil(n / 2) }, (_, i) => 2 * i) : keep;
  const bad = ids.filter((l) => l >= n);
  if (bad.length) throw new FrugalError('E_USAGE', `keep-layers: the teacher has layers 0..${n - 1}; ${bad.join(', ')} do not exist`);
  if (!ids.length) throw new FrugalError('E_USAGE', 'keep-layers: keep at least one layer');
  const weights = new Map<string, Weight>();
  for (const [name, w] of f.weights) {
    const m = /^encoder\.layer\.(\d+)\.(.*)$/.exec(name);
    if (!m) weights.set(name, w);
    else {
      const j = ids.indexOf(Number(m[1]));
      if (j >= 0) weights.set(`encoder.layer.${j}.${m[2]}`, w);
    }
  }
  return { kind: 'transformer', config: { ...f.config, layers: ids.length }, weights };
}

/** round(n·share), refusing zero with a message naming the dimension. */
function keepCount(n: number, share: number, what: string): number {
  const k = Math.round(n * share);
  if (k < 1) throw new FrugalError('E_USAGE', `width=${share} rounds ${what} (${n}) to zero; use a larger width`);
  return k;
}

/**
 * Indices of the k largest scores, ascending (ties: lower index first), so that slicing keeps the
 * teacher's order of units.
 */
export function topK(scores: Float64Array, k: number): number[] {
  return [...scores.keys()].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, k).sort((a, b) => a - b);
}

/** L1 norms of a [rows, cols] matrix's rows (axis 1) or columns (axis 0), added into `acc`. */
function l1(w: Weight, axis: 0 | 1, acc: Float64Array, group = 1): Float64Array {
  const cols = w.data.length / w.dims[0]!;
  for (let r = 0; r < w.dims[0]!; r++) {
    for (let c = 0; c < cols; c++) {
      const v = Math.abs(w.data[r * cols + c]!);
      if (axis === 1) acc[r]! += v;
      else acc[Math.floor(c / group)]! += v;
    }
  }
  return acc;
}

/**
 * Slices a weight: along axis 0 keep rows `rows`, along the flattened rest keep `cols` (null = all).
 * For a rank-1 weight only `rows` applies; a Conv kernel [out, in, kh, kw] takes `cols` over `in`.
 */
function slice(w: Weight, rows: number[] | null, cols: number[] | null): Weight {
  const r = rows ?? [...Array(w.dims[0]!).keys()];
  const inner = w.dims.slice(2).reduce((a, b) => a * b, 1);
  if (w.dims.length === 1) return { dims: [r.length], data: Float32Array.from(r, (i) => w.data[i]!) };
  const c = cols ?? [...Array(w.dims[1]!).keys()];
  const rowLen = w.dims[1]! * inner;
  const data = new Float32Array(r.length * c.length * inner);
  let o = 0;
  for (const i of r) for (const j of c) {
    const start = i * rowLen + j * inner;
    data.set(w.data.subarray(start, start + inner), o);
    o += inner;
  }
  return { dims: [r.length, c.length, ...w.dims.slice(2)], data };
}

function narrowCnn(f: CnnFamily, share: number): CnnFamily {
  const c = f.config;
  const w = new Map(f.weights);
  const get = (n: string): Weight => f.weights.get(n)!;
  let prev: number[] | null = null;
  const channels: number[] = [];
  c.channels.forEach((cout, i) => {
    const name = `conv${i + 1}`;
    const kernel = get(`${name}.weight`);
    const keep = topK(l1(kernel, 1, new Float64Array(cout)), keepCount(cout, share, `${name}'s channels`));
    w.set(`${name}.weight`, slice(kernel, keep, prev));
    w.set(`${name}.bias`, slice(get(`${name}.bias`), keep, null));
    channels.push(keep.length);
    prev = keep;
  });
  // Flatten is channel-major: channel ch owns features [ch·s², (ch+1)·s²).
  let size = c.imageSize;
  for (let i = 0; i < c.channels.length; i++) size = Math.floor(size / 2);
  const s2 = size * size;
  const features = prev!.flatMap((ch) => Array.from({ length: s2 }, (_, k) => ch * s2 + k));
  let hidden = 0;
  let fcCols = features;
  if (c.hidden > 0) {
    const hw = get('hidden.weight');
    const keep = topK(l1(hw, 1, new Float64Array(c.hidden)), keepCount(c.hidden, share, 'the hidden units'));
    w.set('hidden.weight', slice(hw, keep, features));
    w.set('hidden.bias', slice(get('hidden.bias'), keep, null));
    hidden = keep.length;
    fcCols = keep;
  }
  w.set('fc.weight', slice(get('fc.weight'), null, fcCols));
  return { kind: 'cnn', config: { ...c, channels, hidden }, weights: w };
}

function narrowTransformer(f: TransformerFamily, share: number): TransformerFamily {
  const c = f.config;
  const get = (n: string): Weight => {
    const x = f.weights.get(n);
    if (!x) throw new FrugalError('E_UNSUPPORTED', `width reduction: teacher weight '${n}' is missing`);
    return x;
  };
  const d = c.hidden / c.heads;
  const dKeep = keepCount(d, share, 'the head size');
  const hidden = dKeep * c.heads; // heads stay; each keeps dKeep of its dimensions
  const ffn = keepCount(c.ffn, share, 'the FFN width');
  // The residual stream's dimensions, by the norm of their word-embedding column.
  const resid = topK(l1(get('embeddings.word_embeddings.weight'), 0, new Float64Array(c.hidden)), hidden);
  const w = new Map<string, Weight>();
  const put = (n: string, rows: number[] | null, cols: number[] | null) => w.set(n, slice(get(n), rows, cols));
  put('embeddings.word_embeddings.weight', null, resid);
  put('embeddings.position_embeddings.weight', null, resid);
  const norms = (p: string) => {
    put(`${p}.weight`, resid, null);
    put(`${p}.bias`, resid, null);
  };
  norms('embeddings.layer_norm');
  for (let l = 0; l < c.layers; l++) {
    const p = `encoder.layer.${l}`;
    // Attention dimensions: per head the dKeep with the largest query+key+value column and output row norms.
    const score = new Float64Array(c.hidden);
    for (const m of ['query', 'key', 'value']) l1(get(`${p}.attention.${m}.weight`), 0, score);
    l1(get(`${p}.attention.output.weight`), 1, score);
    const attn: number[] = [];
    for (let h = 0; h < c.heads; h++) attn.push(...topK(score.slice(h * d, (h + 1) * d), dKeep).map((j) => h * d + j));
    for (const m of ['query', 'key', 'value']) {
      put(`${p}.attention.${m}.weight`, resid, attn);
      put(`${p}.attention.${m}.bias`, attn, null);
    }
    put(`${p}.attention.output.weight`, attn, resid);
    put(`${p}.attention.output.bias`, resid, null);
    norms(`${p}.attention.layer_norm`);
    const fs = l1(get(`${p}.ffn.output.weight`), 1, l1(get(`${p}.ffn.intermediate.weight`), 0, new Float64Array(c.ffn)));
    const units = topK(fs, ffn);
    put(`${p}.ffn.intermediate.weight`, resid, units);
    put(`${p}.ffn.intermediate.bias`, units, null);
    put(`${p}.ffn.output.weight`, units, resid);
    put(`${p}.ffn.output.bias`, resid, null);
    norms(`${p}.ffn.layer_norm`);
  }
  if (c.norm === 'pre') norms('encoder.final_layer_norm');
  const pool = topK(l1(get('classifier.weight'), 1, l1(get('pooler.dense.weight'), 0, new Float64Array(c.hidden))), hidden);
  put('pooler.dense.weight', resid, pool);
  put('pooler.dense.bias', pool, null);
  put('classifier.weight', pool, null);
  put('classifier.bias', null, null);
  return { kind: 'transformer', config: { ...c, hidden, ffn }, weights: w };
}
