/**
 * Attention forms against straightforward dense references, both run in ONNX Runtime on the same
 * seeded inputs: linear attention equals its quadratic formulation (φ(Q)φ(K)ᵀ ⊙ keep)·V normalized by
 * its row sums; window attention equals softmax attention with a dense band mask; block-sparse equals
 * softmax with the dense block + global pattern; causal forms equal their masked quadratic versions.
 * Every case has a padding mask (the second sequence padded) and a length that is not a whole number
 * of blocks. Gradients through every form are checked against finite differences (float64).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Value } from '../../src/ir/node.js';
import { encodeModelToBytes } from '../../src/onnx/index.js';
import { type AttentionOptions, buildAttention, performerProjection } from '../../src/passes/attention/forms.js';
import { createRng } from '../../src/util/rng.js';
import { gradCheck } from '../helpers/gradcheck.js';

const B = 2;
const H = 2;
const N = 11;
const D = 4;
const F64 = DataType.DOUBLE;

/** Key bias [B,1,1,N]: sequence 0 unpadded, sequence 1 padded after `valid` tokens (−10⁴ as BERT). */
function maskBias(valid: number): Float64Array {
  const m = new Float64Array(B * N);
  for (let j = valid; j < N; j++) m[N + j] = -1e4;
  return m;
}

function randn(n: number, seed: number, scale = 1): Float64Array {
  const rng = createRng(seed);
  return Float64Array.from({ length: n }, () => rng.normal() * scale);
}

type Allowed = (i: number, j: number) => boolean;

/** Dense reference: softmax(QKᵀ·s + mask + structural mask)·V, the structural mask as an [N,N] constant. */
function denseSoftmax(b: GraphBuilder, q: Value, k: Value, v: Value, mask: Value, allowed: Allowed): Value {
  const s = b.op('Mul', [b.op('MatMul', [q, b.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), b.constant('s', F64, [], new Float64Array([1 / Math.sqrt(D)]))]);
  const band = Float64Array.from({ length: N * N }, (_, x) => (allowed(Math.floor(x / N), x % N) ? 0 : -1e9));
  const biased = b.op('Add', [b.op('Add', [s, mask]), b.constant('band', F64, [N, N], band)]);
  return b.op('MatMul', [b.op('Softmax', [biased], { axis: -1 }), v]);
}

/** Dense linear reference: A = φ(Q)φ(K)ᵀ ⊙ exp(mask) ⊙ structure; out = A·V / (rowsum A + eps). */
function denseLinear(b: GraphBuilder, q: Value, k: Value, v: Value, mask: Value, allowed: Allowed): Value {
  const one = b.constant('one', F64, [], new Float64Array([1]));
  const zero = b.constant('zero', F64, [], new Float64Array([0]));
  // elu(x) + 1 written by cases: x + 1 where x > 0, eˣ elsewhere.
  const phi = (x: Value) => b.op('Where', [b.op('Greater', [x, zero]), b.op('Add', [x, one]), b.op('Exp', [x])]);
  const keep = Float64Array.from({ length: N * N }, (_, x) => (allowed(Math.floor(x / N), x % N) ? 1 : 0));
  const a0 = b.op('MatMul', [phi(q), b.op('Transpose', [phi(k)], { perm: [0, 1, 3, 2] })]);
  const a = b.op('Mul', [b.op('Mul', [a0, b.op('Exp', [mask])]), b.constant('keep', F64, [N, N], keep)]);
  const den = b.op('Add', [b.op('ReduceSum', [a, b.constant('ax', DataType.INT64, [1], BigInt64Array.from([3n]))], { keepdims: 1 }), b.constant('eps', F64, [], new Float64Array([1e-6]))]);
  return b.op('Div', [b.op('MatMul', [a, v]), den]);
}

/** Dense performer reference: the same FAVOR+ features, written out, then the quadratic normalization. */
function densePerformer(b: GraphBuilder, q: Value, k: Value, v: Value, mask: Value, allowed: Allowed): Value {
  const w = performerProjection(D, M, 0);
  const wv = b.constant('w', F64, [D, M], Float64Array.from(w));
  const s4 = b.constant('s4', F64, [], new Float64Array([Math.pow(D, -0.25)]));
  const ax = b.constant('ax3', DataType.INT64, [1], BigInt64Array.from([3n]));
  const phi = (x: Value) => {
    const xs = b.op('Mul', [x, s4]);
    const norm = b.op('Div', [b.op('ReduceSum', [b.op('Mul', [xs, xs]), ax], { keepdims: 1 }), b.constant(b.graph.uniqueName('two'), F64, [], new Float64Array([2]))]);
    return b.op('Div', [b.op('Exp', [b.op('Sub', [b.op('MatMul', [xs, wv]), norm])]), b.constant(b.graph.uniqueName('sqm'), F64, [], new Float64Array([Math.sqrt(M)]))]);
  };
  const keep = Float64Array.from({ length: N * N }, (_, x) => (allowed(Math.floor(x / N), x % N) ? 1 : 0));
  const a0 = b.op('MatMul', [phi(q), b.op('Transpose', [phi(k)], { perm: [0, 1, 3, 2] })]);
  const a = b.op('Mul', [b.op('Mul', [a0, b.op('Exp', [mask])]), b.constant('keep', F64, [N, N], keep)]);
  const den = b.op('Add', [b.op('ReduceSum', [a, ax], { keepdims: 1 }), b.constant('eps', F64, [], new Float64Array([1e-6]))]);
  return b.op('Div', [b.op('MatMul', [a, v]), den]);
}

async function runGraph(build: (b: GraphBuilder, q: Value, k: Value, v: Value, m: Value) => Value, feeds: Record<string, Float64Array>, opset = 17): Promise<Float64Array> {
  const b = new GraphBuilder('attn');
  const [q, k, v] = ['q', 'k', 'v'].map((n) => b.input(n, F64, [B, H, N, D]));
  const m = b.input('mask', F64, [B, 1, 1, N]);
  b.output(build(b, q!, k!, v!, m), 'y', F64, [B, H, N, D]);
  const session = await ort.InferenceSession.create(encodeModelToBytes(b.build({ opsetImports: { '': opset } })), { logSeverityLevel: 3 });
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [name, data] of Object.entries(feeds)) f[name] = new ort.Tensor('float64', data, name === 'mask' ? [B, 1, 1, N] : [B, H, N, D]);
    return (await session.run(f)).y!.data as Float64Array;
  } finally {
    await session.release();
  }
}

interface Case {
  name: string;
  opts: Omit<AttentionOptions, 'prefix' | 'headDim' | 'maskBias' | 'elemType'>;
  allowed: Allowed;
  reference: 'softmax' | 'linear' | 'performer';
}

const W = 3;
const M = 16;
const G = 2;
const blockOf = (i: number) => Math.floor(i / W);
const CASES: Case[] = [
  { name: 'softmax', opts: { form: 'softmax' }, allowed: () => true, reference: 'softmax' },
  { name: 'softmax causal', opts: { form: 'softmax', causal: true }, allowed: (i, j) => j <= i, reference: 'softmax' },
  { name: 'linear', opts: { form: 'linear' }, allowed: () => true, reference: 'linear' },
  { name: 'linear causal', opts: { form: 'linear', causal: true }, allowed: (i, j) => j <= i, reference: 'linear' },
  { name: 'performer', opts: { form: 'performer', randomFeatures: M }, allowed: () => true, reference: 'performer' },
  { name: 'performer causal', opts: { form: 'performer', randomFeatures: M, causal: true }, allowed: (i, j) => j <= i, reference: 'performer' },
  { name: 'window w=3', opts: { form: 'window', window: W }, allowed: (i, j) => Math.abs(i - j) <= W, reference: 'softmax' },
  { name: 'window w=3 causal', opts: { form: 'window', window: W, causal: true }, allowed: (i, j) => j <= i && i - j <= W, reference: 'softmax' },
  { name: 'window w=1', opts: { form: 'window', window: 1 }, allowed: (i, j) => Math.abs(i - j) <= 1, reference: 'softmax' },
  { name: 'window w=N (every key)', opts: { form: 'window', window: N }, allowed: () => true, reference: 'softmax' },
  {
    name: 'block 3 + 2 global',
    opts: { form: 'block', window: W, globalTokens: G },
    allowed: (i, j) => i < G || j < G || Math.abs(blockOf(i) - blockOf(j)) <= 1,
    reference: 'softmax',
  },
  { name: 'block 3, no global', opts: { form: 'block', window: W, globalTokens: 0 }, allowed: (i, j) => Math.abs(blockOf(i) - blockOf(j)) <= 1, reference: 'softmax' },
];

describe('attention forms equal their dense references (ORT, float64, padded batch)', () => {
  const feeds = { q: randn(B * H * N * D, 1), k: randn(B * H * N * D, 2), v: randn(B * H * N * D, 3), mask: maskBias(7) };
  for (const c of CASES) {
    test(c.name, async () => {
      const got = await runGraph((b, q, k, v, m) => buildAttention(b, q, k, v, { ...c.opts, headDim: D, maskBias: m, elemType: F64, prefix: 'attn' }), feeds);
      const want = await runGraph((b, q, k, v, m) => ({ linear: denseLinear, performer: densePerformer, softmax: denseSoftmax })[c.reference](b, q, k, v, m, c.allowed), feeds);
      assert.equal(got.length, want.length);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      assert.ok(worst < 1e-9, `${c.name}: max |efficient − dense| = ${worst}`);
    });
  }

  test('opset 12 graphs (axes as attributes, as BERT exporters wrote them) give the same results', async () => {
    for (const c of CASES.filter((x) => x.name === 'linear' || x.name === 'linear causal' || x.name.startsWith('block 3 +') || x.name === 'window w=3')) {
      const build = (opset: number) => (b: GraphBuilder, q: Value, k: Value, v: Value, m: Value) => buildAttention(b, q, k, v, { ...c.opts, headDim: D, maskBias: m, elemType: F64, prefix: 'attn', opset });
      const a = await runGraph(build(17), feeds);
      const b12 = await runGraph(build(12), feeds, 12);
      assert.deepEqual(Array.from(b12), Array.from(a), c.name);
    }
  });

  test('performer approximates softmax attention, closer with more random features', async () => {
    // Small logits (inputs × 0.5) keep the random-feature variance moderate, as trained models do.
    const small = { q: randn(B * H * N * D, 11, 0.5), k: randn(B * H * N * D, 12, 0.5), v: randn(B * H * N * D, 13), mask: maskBias(7) };
    const exact = await runGraph((b, q, k, v, m) => buildAttention(b, q, k, v, { form: 'softmax', headDim: D, maskBias: m, elemType: F64, prefix: 'a' }), small);
    const err = async (features: number) => {
      const got = await runGraph((b, q, k, v, m) => buildAttention(b, q, k, v, { form: 'performer', randomFeatures: features, headDim: D, maskBias: m, elemType: F64, prefix: 'a', seed: 3 }), small);
      let e = 0;
      for (let i = 0; i < got.length; i++) e += Math.abs(got[i]! - exact[i]!) / got.length;
      return e;
    };
    const coarse = await err(4);
    const fine = await err(4096);
    assert.ok(fine < 0.03, `mean |performer(4096) − softmax| = ${fine}`);
    assert.ok(fine < coarse / 4, `more features, smaller error: ${fine} vs ${coarse}`);
  });

  test('the padding mask changes the result (it is not ignored)', async () => {
    for (const c of CASES.filter((x) => x.name === 'linear' || x.name === 'window w=3')) {
      const build = (b: GraphBuilder, q: Value, k: Value, v: Value, m: Value) => buildAttention(b, q, k, v, { ...c.opts, headDim: D, maskBias: m, elemType: F64, prefix: 'attn' });
      const masked = await runGraph(build, feeds);
      const unmasked = await runGraph(build, { ...feeds, mask: new Float64Array(B * N) });
      const row0 = B * H * N * D / 2; // sequence 1 starts here; its first query sees padded keys only through the mask
      let diff = 0;
      for (let i = row0; i < masked.length; i++) diff = Math.max(diff, Math.abs(masked[i]! - unmasked[i]!));
      assert.ok(diff > 1e-3, `${c.name}: the mask made no difference`);
      for (let i = 0; i < row0; i++) assert.equal(masked[i], unmasked[i], `${c.name}: the unpadded sequence must be unaffected`);
    }
  });

  test('bad options are usage errors naming the option', () => {
    const b = new GraphBuilder('x');
    const q = b.input('q', F64, [B, H, N, D]);
    assert.throws(() => buildAttention(b, q, q, q, { form: 'window', window: 0, headDim: D, prefix: 'a' }), /window must be a positive integer, got 0/);
    assert.throws(() => buildAttention(b, q, q, q, { form: 'block', causal: true, headDim: D, prefix: 'a' }), /bidirectional/);
    assert.throws(() => buildAttention(b, q, q, q, { form: 'nope' as never, headDim: D, prefix: 'a' }), /must be one of softmax, linear, performer, window, block/);
  });
});

describe('gradients through every attention form match finite differences (float64)', () => {
  const n = 7;
  const shape = [1, 2, n, 3];
  const mask = Array.from({ length: n }, (_, j) => (j >= 5 ? -1e4 : 0));
  for (const c of CASES.filter((x) => !x.name.includes('w=N'))) {
    test(c.name, async () => {
      const r = await gradCheck({
        inputs: [
          { name: 'q', shape },
          { name: 'k', shape },
          { name: 'v', shape },
          { name: 'mask', shape: [1, 1, 1, n], data: mask, differentiable: false },
        ],
        build: (b, [q, k, v, m]) => buildAttention(b, q!, k!, v!, { ...c.opts, window: c.opts.window === undefined ? undefined : Math.min(c.opts.window, 2), headDim: 3, maskBias: m!, elemType: F64, prefix: 'attn' }),
        maxElements: 12,
      });
      assert.ok(r.checked >= 36);
    });
  }
});
