/**
 * Runtime: dtype packing (fp16/bf16 exhaustively), IR ↔ ort.Tensor conversion, random and file feeds,
 * sessions on builder-made graphs with exact expected values, feed validation and provider errors.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { byteSizeOf, DataType, dataTypeName } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { encodeModelToBytes, saveModel } from '../../src/onnx/index.js';
import {
  bfloat16BitsToFloat32Array,
  float16BitsToFloat32Array,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  packInt4,
  unpackInt4,
} from '../../src/onnx/packing.js';
import {
  availableProviders,
  createSession,
  feedsFromFiles,
  fromOrtTensor,
  outputSummary,
  probeProvider,
  randomFeeds,
  resolveProvider,
  toOrtTensor,
} from '../../src/runtime/index.js';

const f32bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const fromBits = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0]!;

function rejectsWith(code: string, pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isFrugalError(e), `expected a FrugalError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

// ---------------------------------------------------------------------------------------------- fp16

test('float16: all 65,536 patterns survive float16 → float32 → float16', () => {
  const all = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) all[i] = i;
  const f = float16BitsToFloat32Array(all);
  const back = float32ToFloat16Bits(f);
  let nans = 0;
  for (let h = 0; h < 65536; h++) {
    const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN16) {
      nans++;
      assert.ok(Number.isNaN(f[h]), `pattern ${h.toString(16)} should decode to NaN`);
      // Quiet NaNs keep their payload; signalling ones come back quieted (bit 9 set), still NaN.
      assert.equal(back[h]! | 0x0200, h | 0x0200);
    } else {
      assert.equal(back[h], h, `pattern 0x${h.toString(16)} (${f[h]}) round-tripped to 0x${back[h]!.toString(16)}`);
    }
  }
  assert.equal(nans, 2046);
  assert.equal(f[0x3c00], 1);
  assert.equal(f[0x7bff], 65504);
  assert.equal(f[0x0001], 2 ** -24);
  assert.equal(f[0x7c00], Infinity);
  assert.equal(f[0xfc00], -Infinity);
  assert.ok(Object.is(f[0x8000], -0));
});

test('float16: float32 → float16 rounds to nearest, ties to even, at every gap between float16 values', () => {
  const all = new Uint16Array(0x7c00);
  for (let i = 0; i < 0x7c00; i++) all[i] = i;
  const vals = float16BitsToFloat32Array(all); // every non-negative finite float16, increasing
  const probe = new Float32Array(3);
  for (let h = 0; h < 0x7bff; h++) {
    const lo = vals[h]!;
    const hi = vals[h + 1]!;
    const mid = (lo + hi) / 2; // exact in float32: float16 significands are 11 bits
    const midBits = f32bits(mid);
    probe[0] = mid;
    probe[1] = fromBits(midBits - 1); // just below the midpoint
    probe[2] = fromBits(midBits + 1); // just above
    const r = float32ToFloat16Bits(probe);
    assert.equal(r[0], h % 2 === 0 ? h : h + 1, `tie between 0x${h.toString(16)} and next should go to the even one`);
    assert.equal(r[1], h);
    assert.equal(r[2], h + 1);
    // Negative values mirror positive ones with the sign bit.
    assert.equal(float32ToFloat16Bits(new Float32Array([-probe[1]!]))[0], h | 0x8000);
  }
  // Overflow: the tie between 65504 and 65536 goes to the even pattern, which is infinity.
  assert.deepEqual([...float32ToFloat16Bits(new Float32Array([65519.99, 65520, 1e10, -1e10, Infinity, NaN]))].slice(0, 5), [0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7c00]);
  assert.ok(Number.isNaN(float16BitsToFloat32Array(float32ToFloat16Bits(new Float32Array([NaN])))[0]));
  // A NaN whose payload lies only in the dropped low bits stays a NaN.
  assert.equal(float32ToFloat16Bits(new Float32Array([fromBits(0x7f800001)]))[0]! & 0x7c00, 0x7c00);
  assert.notEqual(float32ToFloat16Bits(new Float32Array([fromBits(0x7f800001)]))[0]! & 0x3ff, 0);
  // Underflow: below half the smallest subnormal → 0; exactly half → 0 (even); above → smallest subnormal.
  assert.deepEqual([...float32ToFloat16Bits(new Float32Array([2 ** -26, 2 ** -25, 2 ** -25 * 1.0001, 1e-30, -(2 ** -26)]))], [0, 0, 1, 0, 0x8000]);
});

test('bfloat16: all 65,536 patterns round-trip; float32 → bfloat16 rounds to nearest even', () => {
  const all = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) all[i] = i;
  const back = float32ToBfloat16Bits(bfloat16BitsToFloat32Array(all));
  for (let h = 0; h < 65536; h++) {
    const isNaN16 = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    if (isNaN16) assert.equal(back[h]! | 0x40, h | 0x40);
    else assert.equal(back[h], h, `bf16 pattern 0x${h.toString(16)}`);
  }
  // 1 + 2^-8 is the tie between 1 (0x3f80, even) and 1 + 2^-7 (0x3f81): goes to 0x3f80.
  // 1 + 3·2^-8 ties between 0x3f81 and 0x3f82 (even): goes up.
  const r = float32ToBfloat16Bits(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 3.4e38, NaN, -Infinity]));
  assert.deepEqual([...r.slice(0, 4)], [0x3f80, 0x3f82, 0x3f81, 0x7f80]);
  assert.ok(Number.isNaN(bfloat16BitsToFloat32Array(r)[4]));
  assert.equal(r[5], 0xff80);
});

test('int4 packing: low nibble first, signed and unsigned', () => {
  const v = [-8, 7, -1, 0, 3];
  const packed = packInt4(v);
  assert.deepEqual([...packed], [0x78, 0x0f, 0x03]);
  assert.deepEqual([...unpackInt4(packed, 5, true)], v);
  assert.deepEqual([...unpackInt4(packInt4([15, 0, 9]), 3, false)], [15, 0, 9]);
});

// -------------------------------------------------------------------------------- tensor conversion

const enc = new TextEncoder();

function sampleTensor(dtype: number): Tensor {
  const dims = [2, 3];
  switch (dtype) {
    case DataType.STRING:
      return Tensor.fromStrings(dims, ['a', '', 'héllo', 'x y', '日本', 'z'].map((s) => enc.encode(s)), 's');
    case DataType.INT4:
    case DataType.UINT4:
      return Tensor.fromBytes(dtype, dims, new Uint8Array([0x12, 0x9f, 0x70]), 'q');
    case DataType.INT64:
      return Tensor.fromArray(dtype, dims, new BigInt64Array([-(2n ** 62n), -1n, 0n, 1n, 2n ** 40n, 2n ** 62n]), 'i');
    case DataType.UINT64:
      return Tensor.fromArray(dtype, dims, new BigUint64Array([0n, 1n, 2n ** 63n, 5n, 7n, 2n ** 64n - 1n]), 'u');
    case DataType.FLOAT16:
      return Tensor.fromArray(dtype, dims, float32ToFloat16Bits(new Float32Array([0, -1.5, 65504, 1e-7, Infinity, -0])), 'h');
    case DataType.BOOL:
      return Tensor.fromArray(dtype, dims, new Uint8Array([1, 0, 0, 1, 1, 0]), 'b');
    case DataType.FLOAT:
    case DataType.DOUBLE:
      return Tensor.fromArray(dtype, dims, [0.5, -2.25, 1e-3, 3.75, -0, 1e30].map((x) => (dtype === DataType.FLOAT ? Math.fround(x) : x)), 'f');
    default: {
      const vals = dtype === DataType.INT8 || dtype === DataType.INT16 || dtype === DataType.INT32 ? [-7, 0, 1, 100, -100, 42] : [0, 1, 2, 100, 200, 42];
      return Tensor.fromArray(dtype, dims, vals, 'n');
    }
  }
}

const CONVERTIBLE = [
  DataType.FLOAT,
  DataType.DOUBLE,
  DataType.FLOAT16,
  DataType.INT8,
  DataType.INT16,
  DataType.INT32,
  DataType.INT64,
  DataType.UINT8,
  DataType.UINT16,
  DataType.UINT32,
  DataType.UINT64,
  DataType.BOOL,
  DataType.STRING,
  DataType.INT4,
  DataType.UINT4,
];

function assertSameTensor(a: Tensor, b: Tensor): void {
  assert.equal(b.dtype, a.dtype);
  assert.deepEqual([...b.dims], [...a.dims]);
  if (a.isString) assert.deepEqual(b.strings().map((s) => [...s]), a.strings().map((s) => [...s]));
  else assert.deepEqual([...b.bytes()], [...a.bytes()], `${dataTypeName(a.dtype)} bytes differ`);
}

test('IR Tensor ↔ ort.Tensor round-trips every dtype ort.Tensor holds', () => {
  for (const dtype of CONVERTIBLE) {
    const t = sampleTensor(dtype);
    const o = toOrtTensor(t);
    assert.equal(o.type, dataTypeName(dtype));
    assert.deepEqual(o.dims, [2, 3]);
    assertSameTensor(t, fromOrtTensor(o, t.name));
  }
  // Aligned numeric data is shared, not copied.
  const f = new Float32Array([1, 2, 3, 4]);
  assert.equal((toOrtTensor(Tensor.fromArray(DataType.FLOAT, [4], f)).data as Float32Array).buffer, f.buffer);
  // Unaligned views (as inside a model file) are copied into an aligned array.
  const buf = new Uint8Array(17);
  buf.set(new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer), 1);
  const unaligned = Tensor.fromBytes(DataType.FLOAT, [4], buf.subarray(1));
  assert.deepEqual([...(toOrtTensor(unaligned).data as Float32Array)], [1, 2, 3, 4]);
});

test('types that ORT JS cannot represent give E_UNSUPPORTED naming the type', () => {
  for (const [dtype, name] of [
    [DataType.BFLOAT16, 'bfloat16'],
    [DataType.FLOAT8E4M3FN, 'float8e4m3fn'],
    [DataType.FLOAT8E5M2, 'float8e5m2'],
    [DataType.FLOAT4E2M1, 'float4e2m1'],
    [DataType.COMPLEX64, 'complex64'],
  ] as const) {
    const t = Tensor.fromBytes(dtype, [2], new Uint8Array(byteSizeOf(dtype, 2)), 'w');
    assert.throws(() => toOrtTensor(t), rejectsWith('E_UNSUPPORTED', new RegExp(`tensor 'w'.*${name}`)));
  }
});

test('every dtype the binding exchanges passes through an ORT Identity model unchanged', async () => {
  const types = CONVERTIBLE.filter((d) => d !== DataType.INT4 && d !== DataType.UINT4);
  const b = new GraphBuilder('identity_all');
  for (const dt of types) b.output(b.op('Identity', [b.input(`in_${dataTypeName(dt)}`, dt, [2, 3])]), `out_${dataTypeName(dt)}`, dt, [2, 3]);
  const s = await createSession(b.build({ opsetImports: { '': 17 } }));
  try {
    const feeds: Record<string, Tensor> = {};
    for (const dt of types) feeds[`in_${dataTypeName(dt)}`] = sampleTensor(dt);
    const out = await s.run(feeds);
    for (const dt of types) assertSameTensor(feeds[`in_${dataTypeName(dt)}`]!, out[`out_${dataTypeName(dt)}`]!);
  } finally {
    await s.release();
  }
});

test('int4/uint4 inputs and outputs are refused before the binding sees them (it would abort the process)', async () => {
  const b = new GraphBuilder('q4');
  const x = b.input('x', DataType.INT4, [4]);
  const f = b.input('f', DataType.FLOAT, [4]);
  const scale = b.constant('scale', DataType.FLOAT, [], [1]);
  const zp = b.initializer('zp', Tensor.fromBytes(DataType.INT4, [], new Uint8Array([0])));
  b.output(b.op('DequantizeLinear', [x, scale, zp]), 'deq', DataType.FLOAT, [4]);
  b.output(b.op('QuantizeLinear', [f, scale, zp]), 'q', DataType.INT4, [4]);
  const s = await createSession(b.build({ opsetImports: { '': 21 }, irVersion: 10 }));
  try {
    const feeds = { x: Tensor.fromBytes(DataType.INT4, [4], packInt4([1, -2, 3, -4])), f: Tensor.fromArray(DataType.FLOAT, [4], [1, 2, 3, 4]) };
    await assert.rejects(s.run(feeds), rejectsWith('E_UNSUPPORTED', /input 'x' is int4/));
    await assert.rejects(s.runOrt({ x: toOrtTensor(feeds.x), f: toOrtTensor(feeds.f) }, { outputs: ['deq'] }), rejectsWith('E_UNSUPPORTED', /input 'x' is int4/));
    await assert.rejects(s.runOrt({ f: toOrtTensor(feeds.f) }, { outputs: ['q'] }), rejectsWith('E_UNSUPPORTED', /output 'q' is int4/));
  } finally {
    await s.release();
  }
});

// -------------------------------------------------------------------------------------------- feeds

test('randomFeeds respects dtype and shape, is seeded, and sizes symbolic dims', () => {
  const specs = [
    { name: 'x', elemType: DataType.FLOAT, shape: ['batch', 3, null] },
    { name: 'ids', elemType: DataType.INT64, shape: ['batch', 'seq'] },
    { name: 'attention_mask', elemType: DataType.INT64, shape: ['batch', 'seq'] },
    { name: 'h', elemType: DataType.FLOAT16, shape: [4] },
    { name: 'flag', elemType: DataType.BOOL, shape: [64] },
    { name: 'u8', elemType: DataType.UINT8, shape: [5] },
    { name: 'i32', elemType: DataType.INT32, shape: [] },
    { name: 'd', elemType: DataType.DOUBLE, shape: [2] },
    { name: 'words', elemType: DataType.STRING, shape: [3] },
  ];
  const a = randomFeeds(specs, { seed: 7, dims: { batch: 4, seq: 6 } });
  const b = randomFeeds(specs, { seed: 7, dims: { batch: 4, seq: 6 } });
  const c = randomFeeds(specs, { seed: 8, dims: { batch: 4, seq: 6 } });
  assert.deepEqual([...a.x!.dims], [4, 3, 1]);
  assert.deepEqual([...a.ids!.dims], [4, 6]);
  assert.deepEqual([...a.i32!.dims], []);
  for (const s of specs) {
    assert.equal(a[s.name]!.dtype, s.elemType);
    if (s.elemType === DataType.STRING) assert.deepEqual(a[s.name]!.strings(), b[s.name]!.strings());
    else assert.deepEqual([...a[s.name]!.bytes()], [...b[s.name]!.bytes()], `${s.name} not reproducible`);
  }
  assert.notDeepEqual([...a.x!.bytes()], [...c.x!.bytes()]);
  const ids = [...(a.ids!.toArray() as BigInt64Array)].map(Number);
  assert.ok(ids.every((v) => Number.isInteger(v) && v >= 0 && v < 10));
  assert.ok(new Set(ids).size > 1);
  assert.ok([...(a.attention_mask!.toArray() as BigInt64Array)].every((v) => v === 1n), 'masks default to all ones');
  assert.ok([...(a.flag!.toArray() as Uint8Array)].every((v) => v === 0 || v === 1));
  assert.equal(new Set([...(a.flag!.toArray() as Uint8Array)]).size, 2);
  const x = a.x!.toArray() as Float32Array;
  assert.ok(x.every(Number.isFinite));
  const h = float16BitsToFloat32Array(a.h!.toArray() as Uint16Array);
  assert.ok(h.every((v) => Number.isFinite(v) && Math.abs(v) < 10));
  // A larger float sample looks like N(0, 1).
  const big = randomFeeds([{ name: 'z', elemType: DataType.FLOAT, shape: [20000] }], { seed: 1 }).z!.toArray() as Float32Array;
  const mean = big.reduce((s, v) => s + v, 0) / big.length;
  const variance = big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length;
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.05, `mean ${mean}, variance ${variance}`);
  // Each input's data depends only on the seed and its name, not on the other inputs.
  assert.deepEqual([...randomFeeds([specs[0]!], { seed: 7, dims: { batch: 4 } }).x!.bytes()], [...a.x!.bytes()]);
  const ranged = randomFeeds([{ name: 'k', elemType: DataType.INT32, shape: [100] }], { seed: 1, intRanges: { k: [-3, 3] } }).k!.toArray();
  assert.ok([...ranged].every((v) => Number(v) >= -3 && Number(v) < 3));
  assert.throws(() => randomFeeds([{ name: 'r', elemType: DataType.FLOAT, shape: undefined }], { seed: 1 }), rejectsWith('E_USAGE', /input 'r' has unknown rank/));
});

test('feedsFromFiles reads .pb tensors and runs an ONNX test case to its reference output', async (t) => {
  const dir = path.resolve(process.cwd(), '../shared/data/onnx-backend/node/test_add');
  if (!existsSync(dir)) {
    t.skip('../shared/data is absent');
    return;
  }
  const data = path.join(dir, 'test_data_set_0');
  const feeds = feedsFromFiles([
    { name: 'x', path: path.join(data, 'input_0.pb') },
    { name: 'y', path: path.join(data, 'input_1.pb') },
  ]);
  const expected = feedsFromFiles([{ name: 'sum', path: path.join(data, 'output_0.pb') }]).sum!;
  const s = await createSession(path.join(dir, 'model.onnx'));
  try {
    assert.deepEqual(s.inputNames, ['x', 'y']);
    const out = await s.run(feeds);
    assert.deepEqual([...out.sum!.bytes()], [...expected.bytes()]);
  } finally {
    await s.release();
  }
});

// ----------------------------------------------------------------------------------------- sessions

/** y = a + b; z = x · W with W a constant; symbolic batch. */
function addMatMulModel(): { model: Model; w: number[][] } {
  const w = [
    [1, -2, 0.5],
    [3, 0, -1],
  ];
  const b = new GraphBuilder('add_matmul');
  const a = b.input('a', DataType.FLOAT, ['batch', 3]);
  const bb = b.input('b', DataType.FLOAT, ['batch', 3]);
  const x = b.input('x', DataType.FLOAT, ['batch', 2]);
  const W = b.constant('W', DataType.FLOAT, [2, 3], w.flat());
  b.output(b.op('Add', [a, bb]), 'sum', DataType.FLOAT, ['batch', 3]);
  b.output(b.op('MatMul', [x, W]), 'prod', DataType.FLOAT, ['batch', 3]);
  return { model: b.build({ opsetImports: { '': 17 } }), w };
}

test('a builder-made graph runs in ORT with exactly the expected values (from Model, bytes and path)', async () => {
  const { model, w } = addMatMulModel();
  const A = [1.5, -2, 3, 0.25, 8, -1];
  const B = [0.5, 2, -3, 0.75, 1, 1];
  const X = [1, 2, -0.5, 4];
  const feeds = {
    a: Tensor.fromArray(DataType.FLOAT, [2, 3], A),
    b: Tensor.fromArray(DataType.FLOAT, [2, 3], B),
    x: Tensor.fromArray(DataType.FLOAT, [2, 2], X),
  };
  const expectedSum = A.map((v, i) => v + B[i]!);
  const expectedProd: number[] = [];
  for (let r = 0; r < 2; r++) for (let c = 0; c < 3; c++) expectedProd.push(X[r * 2]! * w[0]![c]! + X[r * 2 + 1]! * w[1]![c]!);

  const dir = mkdtempSync(path.join(tmpdir(), 'frugal-rt-'));
  try {
    const file = path.join(dir, 'add_matmul.onnx');
    await saveModel(model, file);
    for (const source of [model, encodeModelToBytes(model), file]) {
      const s = await createSession(source, { intraOpThreads: 1, graphOptimizationLevel: 'all' });
      try {
        assert.deepEqual(s.inputNames, ['a', 'b', 'x']);
        assert.deepEqual(s.outputNames, ['sum', 'prod']);
        assert.deepEqual(s.inputs[0], { name: 'a', elemType: DataType.FLOAT, dtype: 'float32', shape: ['batch', 3] });
        assert.equal(s.ep, 'cpu');
        const out = await s.run(feeds);
        assert.deepEqual([...(out.sum!.toArray() as Float32Array)], expectedSum);
        assert.deepEqual([...(out.prod!.toArray() as Float32Array)], expectedProd);
        assert.deepEqual([...out.prod!.dims], [2, 3]);
        assert.equal(out.prod!.name, 'prod');
        const only = await s.run(feeds, { outputs: ['prod'] });
        assert.deepEqual(Object.keys(only), ['prod']);
        const raw = await s.runOrt({ a: toOrtTensor(feeds.a), b: toOrtTensor(feeds.b), x: toOrtTensor(feeds.x) });
        assert.ok(raw.sum instanceof ort.Tensor);
      } finally {
        await s.release();
      }
    }
    // The name used in errors is the path when loading from a file.
    const s = await createSession(file);
    await assert.rejects(s.run({ a: feeds.a, b: feeds.b }), rejectsWith('E_USAGE', new RegExp(`model '${file.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}'`)));
    await s.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('feeds are validated before ORT runs: missing, extra, wrong dtype, rank or fixed dim', async () => {
  const { model } = addMatMulModel();
  const s = await createSession(model, { name: 'toy' });
  const ok = {
    a: Tensor.fromArray(DataType.FLOAT, [1, 3], [1, 2, 3]),
    b: Tensor.fromArray(DataType.FLOAT, [1, 3], [1, 2, 3]),
    x: Tensor.fromArray(DataType.FLOAT, [1, 2], [1, 2]),
  };
  try {
    await assert.rejects(s.run({ a: ok.a, x: ok.x }), rejectsWith('E_USAGE', /model 'toy': missing input 'b' \(float32\[batch,3\]\)/));
    await assert.rejects(s.run({ ...ok, c: ok.a }), rejectsWith('E_USAGE', /unknown input 'c'.*'a' \(float32\[batch,3\]\)/));
    await assert.rejects(
      s.run({ ...ok, a: Tensor.fromArray(DataType.DOUBLE, [1, 3], [1, 2, 3]) }),
      rejectsWith('E_USAGE', /input 'a' expects float32\[batch,3\] but got float64\[1,3\]/),
    );
    await assert.rejects(s.run({ ...ok, b: Tensor.fromArray(DataType.FLOAT, [3], [1, 2, 3]) }), rejectsWith('E_USAGE', /input 'b' expects rank 2 .* but got rank 1/));
    await assert.rejects(s.run({ ...ok, x: Tensor.fromArray(DataType.FLOAT, [1, 3], [1, 2, 3]) }), rejectsWith('E_USAGE', /input 'x' expects float32\[batch,2\] but got float32\[1,3\] \(dimension 1 must be 2\)/));
    await assert.rejects(s.run(ok, { outputs: ['nope'] }), rejectsWith('E_USAGE', /unknown output 'nope'/));
    // Batch sizes that cannot broadcast pass Frugal's static checks; ORT's error comes back as E_RUNTIME naming the model.
    const a2 = Tensor.fromArray(DataType.FLOAT, [2, 3], [1, 2, 3, 4, 5, 6]);
    const b3 = Tensor.fromArray(DataType.FLOAT, [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await assert.rejects(s.run({ ...ok, a: a2, b: b3 }), rejectsWith('E_RUNTIME', /onnxruntime failed to run model 'toy' on cpu/));
  } finally {
    await s.release();
  }
  await assert.rejects(s.run(ok), rejectsWith('E_USAGE', /session was released/));
});

test('providers: cpu always available; missing ones give E_UNSUPPORTED with the reason and install hint', async () => {
  const status = availableProviders();
  assert.deepEqual(status.find((p) => p.name === 'cpu'), { name: 'cpu', available: true });
  for (const p of status) if (!p.available) assert.ok(p.reason && p.reason.length > 10, `${p.name} has no reason`);
  assert.equal(resolveProvider(undefined).ortName, 'cpu');
  const { model } = addMatMulModel();
  const cuda = status.find((p) => p.name === 'cuda')!;
  if (!cuda.available) {
    await assert.rejects(createSession(model, { ep: 'cuda' }), rejectsWith('E_UNSUPPORTED', /execution provider 'cuda' is not available in this onnxruntime-node build \(available: cpu.*\).*--onnxruntime-node-install=cuda12/));
  }
  const foreign = process.platform === 'win32' ? 'coreml' : 'dml';
  await assert.rejects(createSession(model, { ep: foreign }), rejectsWith('E_UNSUPPORTED', new RegExp(`'${foreign}' is not available`)));
  await assert.rejects(createSession(model, { ep: 'tpu' }), rejectsWith('E_USAGE', /unknown execution provider 'tpu' \(known: cpu, cuda/));
  await assert.rejects(createSession(model, { intraOpThreads: -1 }), rejectsWith('E_USAGE', /intraOpThreads/));
  await assert.rejects(createSession(model, { graphOptimizationLevel: 'max' as 'all' }), rejectsWith('E_USAGE', /graphOptimizationLevel must be one of disabled, basic, extended, all/));
  assert.deepEqual(await probeProvider('cpu'), { name: 'cpu', available: true });
  const probed = await probeProvider(foreign);
  assert.equal(probed.available, false);
  assert.match(probed.reason!, /not available/);
});

test('ORT load failures are E_RUNTIME naming the model', async () => {
  await assert.rejects(createSession(new Uint8Array([1, 2, 3, 4, 5]), { name: 'garbage.onnx' }), rejectsWith('E_RUNTIME', /could not load model 'garbage.onnx'/));
  const b = new GraphBuilder('bad_op');
  b.output(b.op('NoSuchOp', [b.input('x', DataType.FLOAT, [1])]), 'y', DataType.FLOAT, [1]);
  await assert.rejects(createSession(b.build()), rejectsWith('E_RUNTIME', /could not load model 'bad_op'.*NoSuchOp/));
});

test('outputSummary gives dtype, shape, min, max, mean and NaN count', () => {
  const s = outputSummary(Tensor.fromArray(DataType.FLOAT, [2, 3], [1, -2, NaN, 4, Infinity, 0], 'y'));
  assert.equal(s.dtype, 'float32');
  assert.deepEqual(s.shape, [2, 3]);
  assert.equal(s.min, -2);
  assert.equal(s.max, Infinity);
  assert.equal(s.nanCount, 1);
  assert.equal(s.infCount, 1);
  const h = outputSummary(Tensor.fromArray(DataType.FLOAT16, [3], float32ToFloat16Bits(new Float32Array([1, 2, 6]))));
  assert.deepEqual([h.min, h.max, h.mean, h.nanCount], [1, 6, 3, 0]);
  const i = outputSummary(Tensor.fromArray(DataType.INT64, [2], [5, -3]));
  assert.deepEqual([i.min, i.max, i.mean], [-3, 5, 1]);
});
