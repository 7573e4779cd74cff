/**
 * Reads a teacher built by Frugal's zoo (zoo/cnn.ts, zoo/transformer.ts) back into its configuration and
 * weights, so that a student of the same family can be built from the teacher: with fewer transformer
 * layers (layer dropping) or narrower widths (structured slicing by importance; see students.ts).
 *
 * The zoo's weight names are the contract (`conv1.weight`, `encoder.layer.3.attention.query.weight`,
 * ...): a model exported by another tool is refused with a message saying to give the student as a zoo
 * spec or an ONNX file instead.
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import { shapeOf } from '../../ir/types.js';
import { CNN_DEFAULTS, type CnnConfig } from '../../zoo/cnn.js';
import { TRANSFORMER_TINY_DEFAULTS, type TransformerConfig } from '../../zoo/transformer.js';

/** A float32 weight: its dims and data (a copy, or a view the caller must not modify). */
export interface Weight {
  dims: number[];
  data: Float32Array;
}

export type Family = { kind: 'cnn'; config: CnnConfig; weights: Map<string, Weight> } | { kind: 'transformer'; config: TransformerConfig; weights: Map<string, Weight> };

/** The float32 initializers of a model by name (rank ≥ 1), as weights. */
export function floatWeights(model: Model): Map<string, Weight> {
  const out = new Map<string, Weight>();
  for (const v of model.graph.initializers()) {
    const t = v.initializer!;
    if (t.dtype !== DataType.FLOAT || t.dims.length === 0) continue;
    out.set(v.name, { dims: t.dims.map(Number), data: t.toArray() as Float32Array });
  }
  return out;
}

const unsupported = (why: string): FrugalError =>
  new FrugalError('E_UNSUPPORTED', `cannot derive a student from this teacher: ${why}; layer dropping and width reduction work on Frugal zoo CNNs and transformers (give --student as a zoo spec or an .onnx file instead)`);

/** Recognizes a zoo CNN or transformer teacher and reads its configuration; throws E_UNSUPPORTED otherwise. */
export function readFamily(model: Model): Family {
  const weights = floatWeights(model);
  if (weights.size === 0 && model.graph.initializers().some((v) => v.initializer!.dtype === DataType.FLOAT16)) {
    throw unsupported('its weights are stored in float16 (convert it back to float32 first)');
  }
  if (weights.has('embeddings.word_embeddings.weight')) return { kind: 'transformer', config: transformerConfig(model, weights), weights };
  if (weights.has('conv1.weight')) return { kind: 'cnn', config: cnnConfig(model, weights), weights };
  throw unsupported('it is neither a zoo transformer (no embeddings.word_embeddings.weight) nor a zoo CNN (no conv1.weight)');
}

function need(weights: Map<string, Weight>, name: string): Weight {
  const w = weights.get(name);
  if (!w) throw unsupported(`weight '${name}' is missing`);
  return w;
}

function transformerConfig(model: Model, weights: Map<string, Weight>): TransformerConfig {
  const word = need(weights, 'embeddings.word_embeddings.weight');
  const [vocabSize, hidden] = word.dims as [number, number];
  const layerIds = new Set<number>();
  for (const name of weights.keys()) {
    const m = /^encoder\.layer\.(\d+)\./.exec(name);
    if (m) layerIds.add(Number(m[1]));
  }
  const layers = layerIds.size;
  if (!layers || [...layerIds].some((l) => l >= layers)) throw unsupported('its encoder layers are not numbered 0..N-1');
  const split = model.graph.values.get('attention.split_heads_shape')?.initializer;
  const headDim = split ? Number((split.toArray() as BigInt64Array)[3]) : NaN;
  if (!(headDim > 0) || hidden % headDim !== 0) throw unsupported("its head size is unknown (no 'attention.split_heads_shape' constant)");
  const ln = model.graph.nodes.find((n) => n.opType === 'LayerNormalization');
  return {
    ...TRANSFORMER_TINY_DEFAULTS,
    vocabSize,
    hidden,
    maxLength: need(weights, 'embeddings.position_embeddings.weight').dims[0]!,
    layers,
    heads: hidden / headDim,
    ffn: need(weights, 'encoder.layer.0.ffn.intermediate.weight').dims[1]!,
    classes: need(weights, 'classifier.weight').dims[1]!,
    norm: weights.has('encoder.final_layer_norm.weight') ? 'pre' : 'post',
    layerNormEpsilon: ln ? ln.attrFloat('epsilon', 1e-5) : TRANSFORMER_TINY_DEFAULTS.layerNormEpsilon,
  };
}

function cnnConfig(model: Model, weights: Map<string, Weight>): CnnConfig {
  const channels: number[] = [];
  for (let i = 1; weights.has(`conv${i}.weight`); i++) channels.push(weights.get(`conv${i}.weight`)!.dims[0]!);
  const fc = need(weights, 'fc.weight');
  const hidden = weights.get('hidden.weight');
  const ratio = model.graph.values.get('hidden.dropout_ratio')?.initializer;
  const inShape = shapeOf(model.graph.inputs[0]?.type);
  const imageSize = typeof inShape?.[3] === 'number' ? inShape[3] : CNN_DEFAULTS.imageSize;
  return {
    ...CNN_DEFAULTS,
    channels,
    classes: fc.dims[0]!,
    imageSize,
    inChannels: need(weights, 'conv1.weight').dims[1]!,
    hidden: hidden ? hidden.dims[0]! : 0,
    dropout: ratio ? (ratio.toArray() as Float32Array)[0]! : 0,
  };
}

/**
 * Sets the model's float initializers from `weights` (same names, same dims); throws E_INTERNAL when a
 * name or shape does not match, which would mean the student was built with another configuration.
 */
export function loadWeights(model: Model, weights: Map<string, Weight>): void {
  for (const v of model.graph.initializers()) {
    const t = v.initializer!;
    if (t.dtype !== DataType.FLOAT || t.dims.length === 0) continue;
    const w = weights.get(v.name);
    if (!w) throw new FrugalError('E_INVALID_MODEL', `student weight '${v.name}' has no source`);
    if (w.dims.join('x') !== t.dims.join('x')) throw new FrugalError('E_INVALID_MODEL', `student weight '${v.name}' is [${t.dims.join(', ')}], its source [${w.dims.join(', ')}]`);
    t.setBytes(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength).slice());
  }
}
