/**
 * The attention conversion pass on every attention model at hand: the embedded spam teacher, the zoo
 * encoders (post- and pre-norm) and BERT-style real models in ../shared/data/models. Each converted
 * graph passes verification and runs in ORT. Exactness where the forms must agree: a window (or
 * block) at least as long as the sequence sees every key, so the converted model must reproduce the
 * original's logits; and a zoo encoder built with linear attention must equal the softmax one
 * converted to linear (same weights, so the pass keeps Q/K/V/O). Models the matcher cannot convert
 * (GPT-2's Where-masked causal attention, classifier-head softmaxes) fail with every Softmax listed.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { isFrugalError } from '../../src/errors.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { verify } from '../../src/ir/verify.js';
import { decodeModel, encodeModelToBytes } from '../../src/onnx/index.js';
import { convertAttention, describeAttention } from '../../src/passes/attention/convert.js';
import { parseAttentionPrefix } from '../../src/passes/attention/forms.js';
import { createRng } from '../../src/util/rng.js';
import { buildTransformerEncoder } from '../../src/zoo/transformer.js';

const SHARED = '../shared/data/models';
const SEQ = 24;
const BATCH = 2;
const VALID = 15; // the second sequence is padded after 15 tokens

/** Feeds for a text encoder: token ids < vocab, segment ids 0, a mask padding the second sequence. */
function textFeeds(model: Model, vocab: number): Record<string, ort.Tensor> {
  const rng = createRng(3);
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of model.graph.inputs) {
    const n = BATCH * SEQ;
    let data: bigint[];
    if (/mask/i.test(input.name)) data = Array.from({ length: n }, (_, i) => (i >= SEQ && i % SEQ >= VALID ? 0n : 1n));
    else if (/type/i.test(input.name)) data = new Array<bigint>(n).fill(0n);
    else data = Array.from({ length: n }, () => BigInt(rng.int(vocab)));
    feeds[input.name] = new ort.Tensor('int64', BigInt64Array.from(data), [BATCH, SEQ]);
  }
  return feeds;
}

/** Rows of the smallest Gather table fed by an input: an upper bound on valid ids. */
function vocabOf(model: Model): number {
  let rows = Infinity;
  for (const n of model.graph.nodes) {
    if (n.opType === 'Gather' && n.inputs[0]?.initializer && n.inputs[1]?.isGraphInput) rows = Math.min(rows, n.inputs[0].initializer.dims[0]!);
  }
  return Number.isFinite(rows) ? rows : 2;
}

async function run(model: Model, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModelToBytes(model), { logSeverityLevel: 3 });
  try {
    const out = await s.run(feeds);
    return out[s.outputNames[0]!]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Every original initializer survives byte for byte (Q/K/V/O and the rest). */
function assertWeightsKept(before: Model, after: Model): void {
  const kept = new Map(after.graph.initializers().map((v) => [v.name, v.initializer!]));
  for (const v of before.graph.initializers()) {
    if (v.initializer!.dims.length < 2) continue; // scalars (the old scale) may go
    const t = kept.get(v.name);
    assert.ok(t, `initializer '${v.name}' was dropped`);
    assert.deepEqual(Buffer.from(t.bytes()), Buffer.from(v.initializer!.bytes()), `initializer '${v.name}' changed`);
  }
}

interface Subject {
  name: string;
  load: () => Model;
  layers: number;
}

const SUBJECTS: Subject[] = [
  { name: 'spam teacher (models/spam-transformer.onnx)', load: () => decodeModel(readFileSync('models/spam-transformer.onnx')), layers: 2 },
  { name: 'zoo transformer, post-norm', load: () => buildTransformerEncoder({ vocabSize: 50, maxLength: 32, layers: 2, initStd: 0.2, seed: 5 }), layers: 2 },
  { name: 'zoo transformer, pre-norm', load: () => buildTransformerEncoder({ vocabSize: 50, maxLength: 32, layers: 3, norm: 'pre', initStd: 0.2, seed: 6 }), layers: 3 },
  { name: 'bert-toy (opset 12, Div scale, Constant nodes)', load: () => decodeModel(readFileSync(`${SHARED}/bert-toy/bert_toy_optimized.onnx`)), layers: 5 },
];

describe('attention conversion keeps models valid and, where the forms coincide, exact', () => {
  for (const s of SUBJECTS) {
    const shared = s.name.startsWith('bert-toy');
    test(s.name, { skip: shared && !existsSync(SHARED) ? `${SHARED} is absent` : false }, async () => {
      const original = s.load();
      const feeds = textFeeds(original, vocabOf(original));
      const want = await run(original, feeds);
      assert.deepEqual(describeAttention(original).map((l) => l.form), new Array(s.layers).fill('softmax'));

      for (const [form, window] of [['window', SEQ], ['block', SEQ], ['linear', undefined], ['performer', undefined], ['window', 4], ['block', 4]] as const) {
        const m = s.load();
        const r = convertAttention(m, { form, ...(window ? { window } : {}) });
        verify(m);
        assertWeightsKept(original, m);
        assert.equal((r.stats.converted as unknown[]).length, s.layers, `${form}: every layer converted`);
        assert.deepEqual(r.stats.unconverted, []);
        // The only Softmax nodes left are the blocked forms' own ([.., n/w, w, 3w] and [.., g, n]).
        assert.ok(m.graph.nodes.every((n) => n.opType !== 'Softmax' || parseAttentionPrefix(n.name)), `${form}: no original softmax left`);
        const layers = describeAttention(m);
        assert.deepEqual(layers.map((l) => l.form), new Array(s.layers).fill(form));
        const got = await run(m, feeds);
        assert.ok(got.every(Number.isFinite), `${form}: finite logits`);
        if (window === SEQ) assert.ok(maxDiff(got, want) < 2e-4, `${form} ${window}: a window covering the sequence reproduces softmax (max diff ${maxDiff(got, want)})`);
        else assert.ok(maxDiff(got, want) > 0, `${form} ${window}: the form changes the model`);
      }
    });
  }

  test('zoo: an encoder built with linear attention equals the softmax encoder converted to linear', async () => {
    const cfg = { vocabSize: 50, maxLength: 32, layers: 2, initStd: 0.2, seed: 9 };
    for (const norm of ['post', 'pre'] as const) {
      const converted = buildTransformerEncoder({ ...cfg, norm });
      convertAttention(converted, { form: 'linear' });
      const built = buildTransformerEncoder({ ...cfg, norm, attention: 'linear' });
      verify(built);
      const feeds = textFeeds(built, 50);
      assert.ok(maxDiff(await run(built, feeds), await run(converted, feeds)) < 1e-5, norm);
      assert.deepEqual(describeAttention(built).map((l) => l.form), ['linear', 'linear']);
    }
    const w = buildTransformerEncoder({ ...cfg, attention: 'window', attentionWindow: 8 });
    assert.deepEqual(describeAttention(w).map((l) => `${l.form}:${l.window}`), ['window:8', 'window:8']);
    assert.throws(() => buildTransformerEncoder({ ...cfg, attention: 'window', attentionWindow: 64 }), /attentionWindow \(64\) is larger than the longest sequence \(maxLength 32\)/);
  });
});

describe('attention conversion: bad input', () => {
  test('a model without attention is refused, naming the model', () => {
    const m = decodeModel(readFileSync('models/mnist-cnn.onnx'));
    assert.throws(() => convertAttention(m, { form: 'linear' }), (e: unknown) => isFrugalError(e, 'E_UNSUPPORTED') && /no attention to convert \(no Softmax node\)/.test(e.message));
  });

  test('a window ≤ 0 is a usage error; a window longer than a static sequence names the Softmax', () => {
    const m = buildTransformerEncoder({ vocabSize: 50, maxLength: 32, layers: 1 });
    assert.throws(() => convertAttention(m, { form: 'window', window: 0 }), (e: unknown) => isFrugalError(e, 'E_USAGE') && /window must be a positive integer, got 0/.test(e.message));
    // Fix the sequence length at 16 through the inputs' declared shapes.
    for (const v of m.graph.inputs) v.type = { kind: 'tensor', elemType: DataType.INT64, shape: [1, 16] };
    assert.throws(() => convertAttention(m, { form: 'window', window: 17 }), (e: unknown) => isFrugalError(e, 'E_USAGE') && /window 17 is larger than the sequence \(16 tokens\) at Softmax 'layer0\.attn\.softmax'/.test(e.message));
  });

  test('GPT-2 (causal attention masked by Where) and classifier softmaxes are listed with reasons', { skip: existsSync(SHARED) ? false : `${SHARED} is absent` }, () => {
    const gpt2 = decodeModel(readFileSync(`${SHARED}/gpt2-past/gpt2_past.onnx`));
    assert.throws(
      () => convertAttention(gpt2, { form: 'linear' }),
      (e: unknown) => isFrugalError(e, 'E_UNSUPPORTED') && (e.message.match(/scores pass through Where/g) ?? []).length === 12 && /'Softmax_175'/.test(e.message),
    );
    const squeeze = decodeModel(readFileSync(`${SHARED}/squeezenet-cifar10/squeezenet_cifar10.onnx`));
    assert.throws(() => convertAttention(squeeze, { form: 'window', window: 4 }), (e: unknown) => isFrugalError(e, 'E_UNSUPPORTED') && /scores have rank 2; expected rank 4/.test(e.message));
    const layers = describeAttention(gpt2);
    assert.equal(layers.length, 12);
    assert.ok(layers.every((l) => l.form === 'softmax' && /not convertible: scores pass through Where/.test(l.note ?? '')));
  });
});
