/**
 * Gradient checking through ONNX Runtime: the analytic gradients of a graph built by `differentiate`
 * against central finite differences of the same forward graph, both run in ORT.
 *
 * loss = Σ (y ⊙ R) for a fixed random R (so every output element carries a distinct weight), and
 * d loss / d x_i ≈ (loss(x + εe_i) − loss(x − εe_i)) / 2ε, checked on up to `maxElements` elements
 * of each differentiable input.
 *
 * Tolerances: in float64 the difference quotient is accurate to about ε² · |f'''| + 1e-16/ε, so
 * ε = 1e-4 with rtol = atol = 1e-5 is safe. Ops that ORT runs in float32 only (Conv, pooling,
 * LayerNormalization...) use ε = 1e-2, whose rounding error is about 1e-7 · |loss| / ε ≈ 1e-4 for losses of
 * order 10, plus truncation ε² · |f'''| ≈ 1e-4: rtol = atol = 1e-2 is justified there.
 */
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Value } from '../../src/ir/node.js';
import { inferShapes } from '../../src/ir/shape-inference.js';
import { Tensor } from '../../src/ir/tensor.js';
import { shapeOf } from '../../src/ir/types.js';
import { decodeModel, encodeModelToBytes } from '../../src/onnx/index.js';
import { differentiate } from '../../src/training/autodiff/engine.js';
import { createRng } from '../../src/util/rng.js';

export interface GradInput {
  name: string;
  shape: number[];
  /** Element type (default: the check's dtype). Integer inputs (indices) are never differentiated. */
  elemType?: number;
  /** Fixed data; default: seeded normal values (integers: uniform in [0, intHigh)). */
  data?: number[];
  /** Differentiate with respect to this input (default true for float inputs). */
  differentiable?: boolean;
  intHigh?: number;
  /** Shape declared in the model when it should differ from the data's (unknown dims as null). */
  declared?: Array<number | string | null>;
}

export interface GradCheckOptions {
  inputs: GradInput[];
  /** Builds the op under test; returns the output(s) the loss is taken over (first one by default). */
  build: (b: GraphBuilder, inputs: Value[]) => Value | Value[];
  /** float64 (default) or float32 for ops ORT runs in float32 only. */
  dtype?: 'float64' | 'float32';
  opset?: number;
  seed?: number;
  eps?: number;
  rtol?: number;
  atol?: number;
  maxElements?: number;
  /** Output shapes, where inference cannot know them (inputs declared with unknown dims). */
  outputShapes?: number[][];
  /** Extra model opset imports (e.g. com.microsoft). */
  extraOpsets?: Record<string, number>;
}

export interface GradCheckResult {
  checked: number;
  maxAbsError: number;
}

function makeData(inp: GradInput, elemType: number, seed: number): Tensor {
  const n = inp.shape.reduce((a, b) => a * b, 1);
  const rng = createRng(seed);
  if (elemType === DataType.INT64) {
    const vals = inp.data ?? Array.from({ length: n }, () => rng.int(inp.intHigh ?? 3));
    return Tensor.fromArray(DataType.INT64, inp.shape, BigInt64Array.from(vals.map((v) => BigInt(v))));
  }
  if (elemType === DataType.BOOL) {
    const vals = inp.data ?? Array.from({ length: n }, () => rng.int(2));
    return Tensor.fromArray(DataType.BOOL, inp.shape, Uint8Array.from(vals));
  }
  const vals = inp.data ?? Array.from({ length: n }, () => rng.normal());
  return elemType === DataType.DOUBLE ? Tensor.fromArray(elemType, inp.shape, Float64Array.from(vals)) : Tensor.fromArray(DataType.FLOAT, inp.shape, Float32Array.from(vals));
}

function toOrt(t: Tensor): ort.Tensor {
  const type = t.dtype === DataType.DOUBLE ? 'float64' : t.dtype === DataType.FLOAT ? 'float32' : t.dtype === DataType.INT64 ? 'int64' : 'bool';
  return new ort.Tensor(type, t.toArray() as Float32Array, [...t.dims]);
}

/** Runs the check and asserts agreement; returns how many elements were compared. */
export async function gradCheck(opts: GradCheckOptions): Promise<GradCheckResult> {
  const f64 = (opts.dtype ?? 'float64') === 'float64';
  const ft = f64 ? DataType.DOUBLE : DataType.FLOAT;
  const eps = opts.eps ?? (f64 ? 1e-4 : 1e-2);
  const rtol = opts.rtol ?? (f64 ? 1e-5 : 1e-2);
  const atol = opts.atol ?? (f64 ? 1e-5 : 1e-2);
  const seed = opts.seed ?? 1;

  // Forward model with loss = Σ y ⊙ R.
  const b = new GraphBuilder('gradcheck');
  const ins = opts.inputs.map((inp) => b.input(inp.name, inp.elemType ?? ft, inp.declared ?? inp.shape));
  const built = opts.build(b, ins);
  const outs = Array.isArray(built) ? built : [built];
  const model = b.build({ opsetImports: { '': opts.opset ?? 17, ...(opts.extraOpsets ?? {}) } });
  inferShapes(model);
  const rng = createRng(seed + 1000);
  let loss: Value | undefined;
  for (const [k, y] of outs.entries()) {
    const ys = opts.outputShapes?.[k] ?? shapeOf(y.type);
    assert.ok(ys && ys.every((d) => typeof d === 'number'), `output '${y.name}' needs a static shape, got ${JSON.stringify(ys)}`);
    const n = (ys as number[]).reduce((a, c) => a * c, 1);
    const rData = Array.from({ length: n }, () => rng.normal());
    const r = b.constant(`R_${y.name}`, ft, ys as number[], f64 ? Float64Array.from(rData) : Float32Array.from(rData));
    const yf = ft === (y.type?.kind === 'tensor' ? y.type.elemType : ft) ? y : b.op('Cast', [y], { to: ft });
    const term = b.op('ReduceSum', [b.op('Mul', [yf, r])], { keepdims: 0 });
    loss = loss ? b.op('Add', [loss, term]) : term;
  }
  b.output(loss!, 'loss', ft, []);
  const forwardBytes = encodeModelToBytes(model);

  // Training model: same graph plus the backward pass.
  const train = decodeModel(forwardBytes);
  const diffInputs = opts.inputs.filter((inp) => (inp.differentiable ?? ((inp.elemType ?? ft) === ft)));
  const wrt = diffInputs.map((inp) => train.graph.inputs.find((v) => v.name === inp.name)!);
  const { grads } = differentiate(train, { loss: train.graph.outputs[0]!, wrt });
  for (const g of grads) train.graph.outputs.push(g);

  const data = new Map(opts.inputs.map((inp, i) => [inp.name, makeData(inp, inp.elemType ?? ft, seed + i)]));
  const feeds = () => Object.fromEntries([...data].map(([k, t]) => [k, toOrt(t)]));
  const trainSession = await ort.InferenceSession.create(encodeModelToBytes(train), { logSeverityLevel: 3 });
  const fwdSession = await ort.InferenceSession.create(forwardBytes, { logSeverityLevel: 3 });
  try {
    const analytic = await trainSession.run(feeds());
    let checked = 0;
    let maxAbsError = 0;
    const lossAt = async (name: string, arr: Float64Array | Float32Array): Promise<number> => {
      const f = feeds();
      f[name] = new ort.Tensor(f64 ? 'float64' : 'float32', arr, data.get(name)!.dims as number[]);
      const r = await fwdSession.run(f);
      return Number((r.loss!.data as Float64Array)[0]);
    };
    for (const [k, inp] of diffInputs.entries()) {
      const g = analytic[grads[k]!.name]!;
      assert.deepEqual(g.dims, inp.shape, `gradient of '${inp.name}' has the input's shape`);
      const gd = g.data as Float64Array;
      const base = data.get(inp.name)!.toArray() as Float64Array;
      const n = base.length;
      const pick = createRng(seed + 7 + k);
      const idx = n <= (opts.maxElements ?? 48) ? [...Array(n).keys()] : Array.from({ length: opts.maxElements ?? 48 }, () => pick.int(n));
      for (const i of idx) {
        const plus = base.slice();
        const minus = base.slice();
        plus[i] = plus[i]! + eps;
        minus[i] = minus[i]! - eps;
        const numeric = ((await lossAt(inp.name, plus)) - (await lossAt(inp.name, minus))) / (2 * eps);
        const a = gd[i]!;
        const err = Math.abs(a - numeric);
        maxAbsError = Math.max(maxAbsError, err);
        assert.ok(err <= atol + rtol * Math.max(Math.abs(a), Math.abs(numeric)), `d loss / d ${inp.name}[${i}]: analytic ${a} vs numeric ${numeric} (|diff| ${err})`);
        checked++;
      }
    }
    return { checked, maxAbsError };
  } finally {
    await trainSession.release();
    await fwdSession.release();
  }
}
