/**
 * Model zoo: every model builds, verifies, runs in ONNX Runtime on random feeds with finite logits of
 * shape [batch, classes], and is deterministic per seed. The MLP matches a plain-JS forward pass; the
 * transformer's attention mask really hides padded tokens; bert-base has BERT-base's parameter count.
 */
import { countTrainableParameters } from '../helpers/params.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { verify } from '../../src/ir/verify.js';
import { encodeModelToBytes } from '../../src/onnx/index.js';
import { createSession, randomFeeds } from '../../src/runtime/index.js';
import {
  BERT_BASE_DEFAULTS,
  buildMlp,
  buildTransformerEncoder,
  buildZooModel,
  transformerParameterCount,
  TRANSFORMER_TINY_DEFAULTS,
  ZOO,
  zooNames,
} from '../../src/zoo/index.js';

function weight(model: Model, name: string): Float32Array {
  const v = model.graph.values.get(name);
  assert.ok(v?.initializer, `initializer '${name}' missing`);
  return v.initializer.toArray() as Float32Array;
}

async function runLogits(model: Model, feeds: Record<string, Tensor>): Promise<Tensor> {
  const s = await createSession(model);
  try {
    return (await s.run(feeds)).logits!;
  } finally {
    await s.release();
  }
}

function int64(dims: number[], values: number[]): Tensor {
  return Tensor.fromArray(DataType.INT64, dims, BigInt64Array.from(values.map(BigInt)));
}

for (const name of ['mlp', 'cnn', 'transformer-tiny']) {
  test(`zoo '${name}' builds, verifies and runs in ORT with finite [batch, classes] logits`, async () => {
    const model = buildZooModel(name, { seed: 3 });
    verify(model);
    assert.equal(model.opset, 17);
    const classes = ZOO[name]!.defaults.classes as number;
    const s = await createSession(model);
    try {
      assert.deepEqual(s.outputs.map((o) => [o.name, o.dtype, o.shape]), [['logits', 'float32', ['batch', classes]]]);
      for (const batch of [1, 3]) {
        const feeds = randomFeeds(s.inputs, { seed: batch, dims: { ...ZOO[name]!.exampleDims, batch } });
        const logits = (await s.run(feeds)).logits!;
        assert.deepEqual([...logits.dims], [batch, classes]);
        const v = logits.toArray() as Float32Array;
        assert.ok(v.every(Number.isFinite), `${name}: non-finite logits`);
        assert.ok(new Set(v).size > 1, `${name}: constant logits`);
      }
    } finally {
      await s.release();
    }
  });
}

test('zoo models are deterministic: same seed → same bytes; another seed → other weights', () => {
  for (const name of ['mlp', 'cnn', 'transformer-tiny']) {
    const a = encodeModelToBytes(buildZooModel(name, { seed: 11 }));
    const b = encodeModelToBytes(buildZooModel(name, { seed: 11 }));
    const c = encodeModelToBytes(buildZooModel(name, { seed: 12 }));
    assert.deepEqual(Buffer.from(a).equals(Buffer.from(b)), true, `${name}: same seed gave different bytes`);
    assert.equal(a.byteLength, c.byteLength);
    assert.equal(Buffer.from(a).equals(Buffer.from(c)), false, `${name}: seed is ignored`);
  }
});

test('mlp output matches a plain-JS forward pass of the same weights (1e-4)', async () => {
  const hidden = [32, 16];
  const model = buildMlp({ inputSize: 20, hidden, classes: 5, seed: 5 });
  const batch = 4;
  const x = randomFeeds([{ name: 'input', elemType: DataType.FLOAT, shape: ['batch', 20] }], { seed: 9, dims: { batch } }).input!;
  const got = (await runLogits(model, { input: x })).toArray() as Float32Array;

  let act = Array.from(x.toArray() as Float32Array);
  const sizes = [20, ...hidden, 5];
  for (let l = 0; l < sizes.length - 1; l++) {
    const [fin, fout] = [sizes[l]!, sizes[l + 1]!];
    const w = weight(model, `fc${l + 1}.weight`);
    const bias = weight(model, `fc${l + 1}.bias`);
    assert.ok(bias.every((v) => v === 0), 'biases start at zero');
    const next = new Array<number>(batch * fout).fill(0);
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < fout; j++) {
        let sum = bias[j]!;
        for (let i = 0; i < fin; i++) sum += act[r * fin + i]! * w[i * fout + j]!;
        next[r * fout + j] = l < sizes.length - 2 ? Math.max(0, sum) : sum;
      }
    }
    act = next;
  }
  assert.equal(got.length, act.length);
  for (let i = 0; i < act.length; i++) assert.ok(Math.abs(got[i]! - act[i]!) <= 1e-4 * Math.max(1, Math.abs(act[i]!)), `logit ${i}: ORT ${got[i]} vs JS ${act[i]}`);
  // He init: the first layer's weights have std ≈ sqrt(2 / fan_in).
  const w1 = weight(model, 'fc1.weight');
  const std = Math.sqrt(w1.reduce((s, v) => s + v * v, 0) / w1.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 20)) < 0.03, `fc1 std ${std}`);
});

test('transformer: attention mask hides padded tokens; unmasked tokens matter', async () => {
  for (const norm of ['post', 'pre'] as const) {
    const model = buildTransformerEncoder({ ...TRANSFORMER_TINY_DEFAULTS, vocabSize: 100, maxLength: 16, initStd: 0.2, norm, seed: 4 });
    verify(model);
    const mask = int64([2, 8], [1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    const ids = [5, 17, 42, 8, 9, 0, 0, 0, 3, 1, 4, 1, 5, 9, 2, 6];
    const paddedChanged = [...ids];
    paddedChanged[5] = 77;
    paddedChanged[6] = 31;
    paddedChanged[7] = 99;
    const visibleChanged = [...ids];
    visibleChanged[2] = 43;
    const s = await createSession(model);
    try {
      const logits = async (idv: number[], m: Tensor): Promise<Float32Array> => (await s.run({ input_ids: int64([2, 8], idv), attention_mask: m })).logits!.toArray() as Float32Array;
      const base = await logits(ids, mask);
      const padded = await logits(paddedChanged, mask);
      const visible = await logits(visibleChanged, mask);
      const unmasked = await logits(ids, int64([2, 8], new Array(16).fill(1)));
      const maxDiff = (a: Float32Array, b: Float32Array, rows: number[]): number => Math.max(...rows.flatMap((r) => [0, 1].map((c) => Math.abs(a[r * 2 + c]! - b[r * 2 + c]!))));
      assert.ok(maxDiff(base, padded, [0, 1]) < 1e-6, `${norm}: padded ids changed logits by ${maxDiff(base, padded, [0, 1])}`);
      assert.ok(maxDiff(base, visible, [0]) > 1e-4, `${norm}: changing a visible token did not change logits`);
      assert.ok(maxDiff(base, visible, [1]) < 1e-6, `${norm}: rows leak into each other`);
      assert.ok(maxDiff(base, unmasked, [0]) > 1e-4, `${norm}: the mask has no effect`);
    } finally {
      await s.release();
    }
  }
});

test('transformer: meaningful node and initializer names; variable sequence length', async () => {
  const model = buildZooModel('transformer-tiny');
  const nodes = new Set(model.graph.nodes.map((n) => n.name));
  for (const n of ['embeddings.word', 'layer1.attn.q_proj', 'layer1.attn.softmax', 'layer0.ffn.gelu.erf', 'classifier']) assert.ok(nodes.has(n), `node '${n}' missing`);
  for (const n of ['embeddings.word_embeddings.weight', 'encoder.layer.1.attention.query.weight', 'encoder.layer.0.ffn.intermediate.weight', 'classifier.weight']) {
    assert.ok(model.graph.values.get(n)?.initializer, `initializer '${n}' missing`);
  }
  assert.deepEqual([...model.graph.values.get('encoder.layer.1.attention.query.weight')!.initializer!.dims], [64, 64]);
  const ops = new Set(model.graph.nodes.map((n) => n.opType));
  for (const op of ['Gather', 'LayerNormalization', 'Softmax', 'Erf', 'MatMul', 'Transpose', 'Reshape']) assert.ok(ops.has(op));
  const s = await createSession(model);
  try {
    for (const seq of [1, 7, 512]) {
      const feeds = randomFeeds(s.inputs, { seed: seq, dims: { batch: 2, seq } });
      const out = (await s.run(feeds)).logits!;
      assert.deepEqual([...out.dims], [2, 2]);
      assert.ok((out.toArray() as Float32Array).every(Number.isFinite));
    }
  } finally {
    await s.release();
  }
});

test('parameter counts: formula matches the built initializers; bert-base has ~110M (built in < 10 s)', (t) => {
  for (const cfg of [{}, { layers: 3, heads: 2, hidden: 32, ffn: 48, classes: 5, norm: 'pre' as const }]) {
    const model = buildTransformerEncoder(cfg);
    assert.equal(countTrainableParameters(model), transformerParameterCount({ ...TRANSFORMER_TINY_DEFAULTS, ...cfg }));
  }
  assert.equal(countTrainableParameters(buildZooModel('mlp')), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  const expected = transformerParameterCount(BERT_BASE_DEFAULTS);
  assert.ok(expected > 108e6 && expected < 112e6, `bert-base formula gives ${expected}`);
  const t0 = performance.now();
  let bert: Model | undefined = buildZooModel('bert-base');
  const ms = performance.now() - t0;
  const count = countTrainableParameters(bert);
  verify(bert);
  bert = undefined; // let the 440 MB go before the next test
  assert.equal(count, expected);
  assert.ok(ms < 10_000, `bert-base took ${ms.toFixed(0)} ms to build`);
  t.diagnostic(`bert-base: ${count} parameters (${((count * 4) / 1e6).toFixed(0)} MB fp32), built in ${ms.toFixed(0)} ms`);
});

test('zoo table: names, descriptions, overrides and clear errors', () => {
  assert.deepEqual(zooNames(), ['mlp', 'cnn', 'transformer-tiny', 'bert-base']);
  assert.ok(Object.isFrozen(ZOO));
  for (const e of Object.values(ZOO)) assert.ok(e.description.length > 20);
  const m = buildZooModel('mlp', { hidden: [8], classes: 3, inputSize: 4 });
  assert.equal(countTrainableParameters(m), 4 * 8 + 8 + 8 * 3 + 3);
  assert.throws(() => buildZooModel('resnet'), (e: unknown) => isFrugalError(e, 'E_USAGE') && /unknown zoo model 'resnet' \(available: mlp, cnn/.test(e.message));
  assert.throws(() => buildZooModel('mlp', { hiden: [8] }), (e: unknown) => isFrugalError(e, 'E_USAGE') && /unknown option hiden/.test(e.message));
  assert.throws(() => buildZooModel('transformer-tiny', { hidden: 65 }), (e: unknown) => isFrugalError(e, 'E_USAGE') && /divisible by heads/.test(e.message));
});
