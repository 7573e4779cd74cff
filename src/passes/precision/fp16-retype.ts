/**
 * The float16 pass's second phase: the retyping, once its rule has decided every node of the main graph
 * (fp16.ts says why this is not per node): which values become float16 (those the converted nodes write,
 * recorded by the rule, and float initializers a converted node reads), Casts at the graph outputs and
 * wherever a value crosses between float16 and float32 nodes (or into a kept subgraph), initializer and
 * constant conversion, and the removal of Casts that do nothing.
 */
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import { implicitInputs } from '../../ir/traversal.js';
import { elemTypeOf, shapeOf, tensorType } from '../../ir/types.js';
import { float32ToBfloat16Bits, float32ToFloat16Bits } from '../../onnx/packing.js';
import type { Fp16Stats } from './fp16.js';
import { float32Only, FP16_MAX } from './fp16-ops.js';

const F32 = DataType.FLOAT;

/**
 * A float32 value. An initializer whose declared type is missing (old exporters list initializers as
 * untyped graph inputs) is still known to be float32 from its tensor.
 */
export function isFloat32(v: Value | null | undefined): v is Value {
  return !!v && (elemTypeOf(v.type) ?? v.initializer?.dtype) === F32;
}

/**
 * Retypes `model` (main graph) so that the nodes in `half` compute in `to`; `halfValues` holds the values
 * they write that become float16, and gains the initializers. See the module comment.
 */
export function retypeToHalf(model: Model, half: ReadonlySet<Node>, halfValues: Set<Value>, to: 'float16' | 'bfloat16', stats: Fp16Stats): void {
  const H = to === 'float16' ? DataType.FLOAT16 : DataType.BFLOAT16;
  const g = model.graph;
  const floats = new Set<Value>([...g.values.values()].filter(isFloat32));

  // 2. Converted values: the converted nodes' (`halfValues`, from the rule), and float initializers a converted node reads.
  let initializerInputsDropped = 0;
  for (const v of g.initializers()) {
    if (!isFloat32(v)) continue;
    if (v.uses.some((u) => u.node.graph === g && half.has(u.node) && !float32Only(u.node, u.index))) {
      // Models of IR version < 4 must list every initializer as a graph input too (opset-7 exports do).
      // Such an input is a constant in practice; converting it keeps the model's real inputs float32 and
      // halves its bytes, where casting it at run time (what this pass did before) gains nothing.
      if (v.isGraphInput) {
        g.inputs.splice(g.inputs.indexOf(v), 1);
        initializerInputsDropped++;
      }
      halfValues.add(v);
    } else stats.initializersKeptFloat32++;
  }
  // IR version 4 is the first that lets an initializer be absent from the graph inputs.
  if (initializerInputsDropped && model.irVersion < 4) model.irVersion = 4;
  stats.initializerInputsDropped = initializerInputsDropped;

  // 3. Graph outputs keep float32: the converted producer writes a new value, a Cast writes the output.
  const casts = new Map<string, Value>();
  const inserted = new Set<Node>();
  const castOf = (v: Value, target: number, before: Node): Value => {
    const key = `${v.name}->${target}`;
    let c = casts.get(key);
    if (!c) {
      const node = g.addNode({ opType: 'Cast', name: g.uniqueNodeName(`${v.name}_cast`), inputs: [v], attributes: { to: target }, outputNames: [`${v.name}_${target === F32 ? 'fp32' : to === 'float16' ? 'fp16' : 'bf16'}`] }, { before });
      inserted.add(node);
      c = node.outputs[0]!;
      c.type = tensorType(target, shapeOf(v.type));
      casts.set(key, c);
      stats.castsInserted++;
    }
    return c;
  };
  for (const [i, out] of g.outputs.entries()) {
    if (!halfValues.has(out) || !out.producer) continue;
    const p = out.producer;
    const inner = g.createValue(`${out.name}_${to === 'float16' ? 'fp16' : 'bf16'}`, out.type);
    out.replaceAllUsesWith(inner);
    p.setOutput(out.producerIndex, inner);
    halfValues.delete(out);
    halfValues.add(inner);
    inserted.add(g.addNode({ opType: 'Cast', name: g.uniqueNodeName(`${out.name}_cast`), inputs: [inner], attributes: { to: F32 }, outputs: [out] }, { after: p }));
    g.outputs[i] = out;
    stats.castsInserted++;
  }

  // 4. Cast wherever a value crosses between float16 and float32 nodes (or into a kept subgraph).
  for (const n of [...g.nodes]) {
    if (inserted.has(n)) continue;
    for (let i = 0; i < n.inputs.length; i++) {
      const v = n.inputs[i];
      if (!v || !(floats.has(v) || halfValues.has(v))) continue;
      if (n.opType === 'Cast' && half.has(n)) continue; // a converted Cast accepts either type
      const needHalf = half.has(n) && !float32Only(n, i);
      if (needHalf !== halfValues.has(v)) n.setInput(i, castOf(v, needHalf ? H : F32, n));
    }
    for (const v of n.subgraphs().length ? implicitInputs(n) : []) {
      if (!halfValues.has(v)) continue;
      const c = castOf(v, F32, n);
      for (const u of [...v.uses]) if (u.node.graph !== g) u.node.setInput(u.index, c);
    }
  }

  // 5. Retype: converted node outputs, initializers, Cast targets and constant attributes.
  for (const v of halfValues) {
    if (v.initializer) {
      v.initializer = toHalf(v.initializer, H, stats, v.name);
      stats.initializersConverted++;
    }
    v.type = tensorType(H, shapeOf(v.type) ?? (v.initializer ? [...v.initializer.dims] : undefined));
  }
  for (const n of half) {
    if (n.opType === 'Cast' && n.attrInt('to', 0) === F32) n.setAttribute('to', H);
    if (n.opType === 'Constant' || n.opType === 'ConstantOfShape') {
      const t = n.attr('value');
      n.setAttribute('value', t instanceof Tensor ? toHalf(t, H, stats, n.name) : Tensor.fromArray(H, [1], [0]));
    }
  }

  removeRedundantCasts(g, stats);
}

/** A float32 tensor in float16 (clipping finite values to ±65504) or bfloat16; other tensors unchanged. */
function toHalf(t: Tensor, H: number, stats: Fp16Stats, name: string): Tensor {
  if (t.dtype !== F32) return t;
  const src = t.toArray() as Float32Array;
  if (H === DataType.BFLOAT16) return Tensor.fromArray(H, [...t.dims], float32ToBfloat16Bits(src), name);
  let data = src;
  for (let i = 0; i < src.length; i++) {
    const x = src[i]!;
    const a = Math.abs(x);
    if (a > FP16_MAX && Number.isFinite(x)) {
      if (data === src) data = new Float32Array(src);
      data[i] = x > 0 ? FP16_MAX : -FP16_MAX;
      stats.clipped++;
    } else if (a !== 0 && a < 2 ** -25) {
      stats.underflowed++;
    }
  }
  return Tensor.fromArray(H, [...t.dims], float32ToFloat16Bits(data), name);
}

/** Drops Casts to the type their input already has, and float16→float32→float16 round trips. */
function removeRedundantCasts(g: Graph, stats: Fp16Stats): void {
  for (const n of [...g.nodes]) {
    if (n.opType !== 'Cast' || n.domain !== '' || !n.graph) continue;
    const x = n.inputs[0];
    const y = n.outputs[0];
    if (!x || !y || y.isGraphOutput) continue;
    const to = n.attrInt('to', 0);
    let source: Value | undefined;
    if (elemTypeOf(x.type) === to) source = x;
    else {
      // Cast(to=T)(Cast(to=float32)(x: T)) is x when T is float16/bfloat16: widening to float32 is exact.
      const p = x.producer;
      const inner = p?.opType === 'Cast' ? p.inputs[0] : undefined;
      if (inner && p!.attrInt('to', 0) === F32 && elemTypeOf(inner.type) === to && (to === DataType.FLOAT16 || to === DataType.BFLOAT16)) source = inner;
    }
    if (!source) continue;
    y.replaceAllUsesWith(source);
    g.removeNode(n);
    stats.castsRemoved++;
    // The widening Cast may now be unused.
    const p = x.producer;
    if (p && p.opType === 'Cast' && x.uses.length === 0 && !x.isGraphOutput && p.graph) {
      g.removeNode(p);
      stats.castsRemoved++;
    }
  }
}
