/**
 * fp16 training support detection. Mixed precision (fp16 weights and activations, an fp32 master copy
 * of the weights, dynamic loss scaling) only pays where the execution provider has fp16 kernels for the
 * model's ops. ONNX Runtime's CPU provider lacks most of them (on x64: no fp16 MatMul, Gemm, Conv...),
 * and a session over an fp16 graph then fails to load with "Could not find an implementation for
 * <Op>(<version>) node with name '<node>'". This module builds the fp16 form of the forward model, tries
 * to create a session on the provider, and turns that failure into an E_UNSUPPORTED error naming the op.
 */
import { FrugalError } from '../errors.js';
import { DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { Tensor } from '../ir/tensor.js';
import { elemTypeOf, shapeOf, tensorType } from '../ir/types.js';
import { float32ToFloat16Bits } from '../onnx/packing.js';
import { createSession } from '../runtime/index.js';
import { cloneModel } from './training-graph.js';

/**
 * A clone of `model` with every float32 initializer, graph input/output and Cast-to-float in float16
 * (Constant nodes holding float32 tensors too). For probing kernels, not a calibrated conversion pass.
 */
export function toFloat16Model(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  for (const v of g.initializers()) {
    const t = v.initializer!;
    if (t.dtype !== DataType.FLOAT) continue;
    v.initializer = Tensor.fromArray(DataType.FLOAT16, [...t.dims], float32ToFloat16Bits(t.toArray() as Float32Array), v.name);
    v.type = tensorType(DataType.FLOAT16, [...t.dims]);
  }
  for (const v of [...g.inputs, ...g.outputs]) {
    if (elemTypeOf(v.type) === DataType.FLOAT) v.type = tensorType(DataType.FLOAT16, shapeOf(v.type));
  }
  for (const n of g.nodes) {
    if (n.opType === 'Cast' && n.attrInt('to', 0) === DataType.FLOAT) n.setAttribute('to', DataType.FLOAT16);
    if (n.opType === 'Constant') {
      const t = n.attr('value');
      if (t instanceof Tensor && t.dtype === DataType.FLOAT) n.setAttribute('value', Tensor.fromArray(DataType.FLOAT16, [...t.dims], float32ToFloat16Bits(t.toArray() as Float32Array)));
    }
  }
  // Intermediate types are re-inferred by ORT; drop stale float32 annotations.
  for (const n of g.nodes) for (const o of n.outputs) if (o && !o.isGraphOutput) o.type = undefined;
  return m;
}

/**
 * Throws E_UNSUPPORTED naming the first op without an fp16 kernel on `ep`; when every op has one,
 * throws E_UNSUPPORTED too, since the fp16 update path (fp32 master weights, loss scaling) is not
 * implemented yet. Resolves only if a future version implements it.
 */
export async function checkFp16Support(model: Model, ep: string): Promise<void> {
  let session;
  try {
    session = await createSession(toFloat16Model(model), { ep, name: 'fp16 probe', logSeverity: 4 });
  } catch (e) {
    const msg = (e as Error).message;
    const m = /Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'/.exec(msg);
    if (m) {
      throw new FrugalError('E_UNSUPPORTED', `fp16 training is not possible on the '${ep}' execution provider: it has no float16 kernel for ${m[1]} (opset ${m[2]}, node '${m[3]}'); train in fp32 (the default) or use a provider with fp16 kernels`, { cause: e });
    }
    throw new FrugalError('E_UNSUPPORTED', `fp16 training is not possible on the '${ep}' execution provider: the fp16 model does not load (${msg})`, { cause: e });
  }
  await session.release();
  throw new FrugalError('E_UNSUPPORTED', `the '${ep}' execution provider runs this model in fp16, but fp16 training (fp32 master weights with dynamic loss scaling) is not implemented yet; train in fp32`);
}
