/**
 * Running the training graph for the optimizer backends.
 */
import * as ort from 'onnxruntime-node';
import type { FrugalSession } from '../../runtime/index.js';
import { float16BitsToFloat32Array } from '../../onnx/packing.js';
import { type FusedState, fusedScalars } from './in-graph.js';

/**
 * One fused step: feeds the front weights, optimizer state and step scalars; ORT writes the updated
 * weights and state straight into the back buffers (pre-allocated fetches), which then become the front.
 */
export async function runFused(session: FrugalSession, feeds: Record<string, ort.Tensor>, wanted: string[], fs: FusedState, lr: number): Promise<Record<string, ort.OnnxValue>> {
  const b = fs.binding;
  for (const p of b.params) for (const s of Object.values(p.slots)) feeds[s.input] = new ort.Tensor('float32', fs.front.get(s.input)!, feeds[p.weight]!.dims);
  const scalars = fusedScalars(b, fs.step + 1, lr);
  b.scalars.forEach((name, i) => (feeds[name] = new ort.Tensor('float32', Float32Array.of(scalars[i]!), [])));
  const targets: Record<string, ort.Tensor> = {};
  for (const [name, buf, weight] of fs.outputTargets()) targets[name] = new ort.Tensor('float32', buf, feeds[weight]!.dims);
  const out = await session.runOrt(feeds, { outputs: [...wanted, ...Object.keys(targets)], targets });
  fs.swap();
  return out;
}

/** A gradient output as float32 (mixed-precision graphs give float16 ones, as raw bit patterns). */
export function gradientOf(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') {
    const d = t.data as ArrayBufferView;
    return float16BitsToFloat32Array(d instanceof Uint16Array ? d : new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2));
  }
  return t.data as Float32Array;
}
