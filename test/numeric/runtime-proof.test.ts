/**
 * A pass only reports success after its output loads and runs in ONNX Runtime (issue 11, item 1):
 * old-opset style-transfer graphs (opset 7, initializers listed as graph inputs, one of them untyped,
 * InstanceNormalization, ConvTranspose, Add with a Constant) and values of unknown type now convert to
 * float16 models that ORT loads and that match float32; a pass whose output ORT refuses fails with the
 * runtime's reason instead of succeeding.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { float, floats } from '../../src/ir/node.js';
import { Tensor } from '../../src/ir/tensor.js';
import { elemTypeOf } from '../../src/ir/types.js';
import { decodeModel, encodeModelToBytes } from '../../src/onnx/index.js';
import { type Pass, PassManager } from '../../src/passes/pass.js';
import type { Fp16Stats } from '../../src/passes/precision/index.js';
import { applyQuantizeMode } from '../../src/passes/registry.js';
import { proveInRuntime } from '../../src/passes/runtime-proof.js';
import { createSession, feedSpecsOf, randomFeeds } from '../../src/runtime/index.js';

const F = DataType.FLOAT;
const clone = (m: Model): Model => decodeModel(encodeModelToBytes(m));
const wave = (n: number, k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3 + k) * 0.3);

/**
 * A fast-style-transfer block as opset-7 exporters wrote it: IR version 3, every initializer also listed
 * as a graph input (`bi`'s declaration untyped), reflect Pad, Conv, InstanceNormalization, Relu,
 * Upsample, ConvTranspose, and Add/Mul with float constants (one a Constant node).
 */
function styleTransferOpset7(): Model {
  const b = new GraphBuilder('style');
  const x = b.input('x', F, [1, 3, 16, 16]);
  const p = b.op('Pad', [x], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'reflect' });
  const c = b.op('Conv', [p, b.constant('w1', F, [4, 3, 3, 3], wave(108, 1)), b.constant('b1', F, [4], wave(4, 2))], { kernel_shape: [3, 3] });
  const n = b.op('InstanceNormalization', [c, b.constant('sc', F, [4], wave(4, 3)), b.constant('bi', F, [4], wave(4, 4))], { epsilon: float(1e-5) });
  const u = b.op('Upsample', [b.op('Relu', [n])], { scales: floats([1, 1, 2, 2]), mode: 'nearest' });
  const t = b.op('ConvTranspose', [u, b.constant('wt', F, [4, 3, 2, 2], wave(48, 5)), b.constant('bt', F, [3], wave(3, 6))], { strides: [2, 2], kernel_shape: [2, 2] });
  const k = b.op('Constant', [], { value: Tensor.fromArray(F, [1], [0.5]) });
  const y = b.op('Mul', [b.op('Add', [t, k]), b.constant('k255', F, [1], [127.5])]);
  b.output(y, 'y', F, [1, 3, 64, 64]);
  for (const v of b.graph.initializers()) b.graph.inputs.push(v);
  b.graph.values.get('bi')!.type = undefined;
  return clone(b.build({ opsetImports: { '': 7 }, irVersion: 3 }));
}

async function run(m: Model, feeds: Record<string, Tensor>): Promise<Float32Array> {
  const s = await createSession(clone(m));
  try {
    return (await s.run(feeds))['y']!.toArray() as Float32Array;
  } finally {
    await s.release();
  }
}

function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) (d = Math.max(d, Math.abs(a[i]! - b[i]!))), (m = Math.max(m, Math.abs(b[i]!)));
  return d / m;
}

test('fp16 on an opset-7 style-transfer graph with initializers as graph inputs: ORT loads it, weights halve, outputs match', async () => {
  const m = styleTransferOpset7();
  const feeds = randomFeeds(feedSpecsOf(m), { seed: 3 });
  assert.deepEqual(Object.keys(feeds), ['x'], 'initializer inputs have defaults');
  const ref = await run(m, feeds);
  const r = await applyQuantizeMode(m, 'fp16');
  const s = r.passes.at(-1)!.stats as Fp16Stats;
  assert.deepEqual(r.warnings, []);
  assert.equal(s.initializersConverted, 8, 'seven weights and the folded Constant');
  assert.equal(s.initializerInputsDropped, 7);
  assert.ok(s.bytesAfter <= s.bytesBefore / 2, `${s.bytesAfter} vs ${s.bytesBefore}`);
  assert.ok(r.model.irVersion >= 4, 'IR 4 lets initializers leave the input list');
  assert.deepEqual(r.model.graph.inputs.map((v) => [v.name, elemTypeOf(v.type)]), [['x', F]]);
  const e = relErr(await run(r.model, feeds), ref);
  assert.ok(e < 5e-3, `relative error ${e}`);
  // q4f16 ends in the same conversion (no MatMul here for int4): it must load too.
  const q = await applyQuantizeMode(styleTransferOpset7(), 'q4f16');
  assert.ok(relErr(await run(q.model, feeds), ref) < 5e-3);
});

test('fp16 keeps a node that reads a value of unknown type in float32, so ORT binds one type per parameter', async () => {
  // Det has no shape rule here: its output type is unknown; the Add reading it must not become float16.
  const b = new GraphBuilder('g');
  const d = b.op('Det', [b.input('x', F, [2, 3, 3])]);
  b.output(b.op('Relu', [b.op('Add', [d, b.constant('c', F, [1], [0.5])])]), 'y', F, [2]);
  const m = clone(b.build({ opsetImports: { '': 13 } }));
  const feeds = randomFeeds(feedSpecsOf(m), { seed: 1 });
  const ref = await run(m, feeds);
  const r = await applyQuantizeMode(m, 'fp16');
  const s = r.passes.at(-1)!.stats as Fp16Stats;
  assert.equal(s.keptFloat32['Add']?.reason, 'an input type is unknown');
  assert.ok(relErr(await run(r.model, feeds), ref) < 1e-3);
});

/** A pass that breaks typing: retypes an initializer's bytes as float16 behind a float32 Add. */
const breaksTyping: Pass = {
  name: 'break-typing',
  run(model) {
    const v = model.graph.values.get('c')!;
    v.initializer = Tensor.fromArray(DataType.FLOAT16, [1], Uint16Array.of(0x3800));
    v.type = { kind: 'tensor', elemType: DataType.FLOAT16, shape: [1] };
    return { model, modified: true, stats: {} };
  },
};

function addModel(): Model {
  const b = new GraphBuilder('g');
  b.output(b.op('Add', [b.input('x', F, [2]), b.constant('c', F, [1], [0.5])]), 'y', F, [2]);
  return b.build({ opsetImports: { '': 13 } });
}

test('PassManager with proveInRuntime: a pass whose output ORT cannot load fails, naming itself and the reason', async () => {
  await assert.rejects(
    new PassManager([breaksTyping], { proveInRuntime: true, verify: false }).run(addModel()),
    (e: unknown) => isFrugalError(e, 'E_UNSUPPORTED') && /pass 'break-typing' produced a model that ONNX Runtime cannot load/.test(e.message) && /float16/.test(e.message),
  );
  // Without the proof the same pipeline "succeeds": the check is what catches it.
  const r = await new PassManager([breaksTyping], { verify: false }).run(addModel());
  assert.equal(r.modified, true);
  assert.equal((await proveInRuntime(r.model)).loaded, false);
});

test('proveInRuntime: loads and runs a good model; an input that does not run only gets a warning', async () => {
  assert.deepEqual(await proveInRuntime(addModel()), { loaded: true, ran: true });
  // Reshape to a shape the random input cannot have: loads, never runs, before or after the pass.
  const b = new GraphBuilder('g');
  const shape = b.constant('shape', DataType.INT64, [1], BigInt64Array.of(7n));
  b.output(b.op('Reshape', [b.op('Add', [b.input('x', F, [2]), b.constant('c', F, [1], [0.5])]), shape]), 'y', F);
  const m = b.build({ opsetImports: { '': 13 } });
  const p = await proveInRuntime(m);
  assert.equal(p.loaded, true);
  assert.equal(p.ran, false);
  const r = await applyQuantizeMode(m, 'fp16');
  assert.match(r.warnings.join('\n'), /was not run because the input does not run on random inputs either/);
});
