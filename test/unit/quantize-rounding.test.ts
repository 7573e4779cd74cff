/**
 * The fast rounding inside the quantizers (roundHalfEven without `x % 1`, the 1.5 × 2^52 "magic number"
 * rounding in quantizeWeight and quantizeBlockwise) must agree bit for bit with the plain definitions:
 * ties to even for int8 (numpy's rint), Math.round for int4 codes. Checked on .5 ties, negatives, ±0,
 * large values, non-finite values and denormal ranges, and on whole tensors against plain-JS references.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeScaleZeroPoint, quantizeWeight, quantRange, roundHalfEven } from '../../src/passes/quantize/quant-math.js';
import { type BlockQuantized, codeAt, quantizeBlockwise } from '../../src/passes/quantize/int4-blockwise.js';
import { createRng } from '../../src/util/rng.js';

/** The definition: nearest integer, ties to the even neighbour. */
function referenceRoundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const EDGE = [
  0, -0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5, 126.5, -126.5, 127.5, -127.5, 0.49999999999999994, -0.49999999999999994,
  1.4999999999999998, 2 ** 31 + 0.5, -(2 ** 31) - 0.5, 2 ** 32 + 1.5, 2 ** 51 + 0.5, -(2 ** 51) - 0.5, 2 ** 52, 2 ** 52 + 1, 2 ** 53, -(2 ** 60), 1e300,
  Number.MIN_VALUE, -Number.MIN_VALUE, Infinity, -Infinity, NaN, 1 - 2 ** -53, -1 + 2 ** -53,
];

test('roundHalfEven agrees with the definition on ties, negatives, ±0, large and non-finite values', () => {
  const rng = createRng(7);
  const xs = [...EDGE];
  for (let i = 0; i < 20000; i++) xs.push((rng.int(2001) - 1000) / 2, (rng.next() - 0.5) * 600, (rng.next() - 0.5) * 2 ** (rng.int(80) - 20));
  for (const x of xs) assert.ok(Object.is(roundHalfEven(x), referenceRoundHalfEven(x)), `roundHalfEven(${x}) = ${roundHalfEven(x)}, expected ${referenceRoundHalfEven(x)}`);
});

/** quantizeWeight's element arithmetic, written plainly (per tensor). */
function referenceQuantize(data: Float32Array, signed: boolean): number[] {
  const range = quantRange(signed ? 'int8' : 'uint8', { symmetric: signed });
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const p = computeScaleZeroPoint(lo === Infinity ? 0 : lo, hi === -Infinity ? 0 : hi, range, signed);
  return Array.from(data, (x) => {
    const q = referenceRoundHalfEven(x / p.scale) + p.zeroPoint;
    const c = q < range.qmin ? range.qmin : q > range.qmax ? range.qmax : q;
    return signed ? (c << 24) >> 24 : c & 0xff;
  });
}

test('quantizeWeight matches the plain reference on exact ties and on denormal ranges', () => {
  // Values k × scale / 2 land on exact .5 ties of x / scale (scale 1 here: the range is ±127).
  const ties = Float32Array.from({ length: 509 }, (_, i) => (i - 254) / 2);
  ties[0] = -127;
  ties[1] = 127;
  const denormal = Float32Array.from([1e-45, -3e-45, 4e-44, -9e-44, 0, -0, 2e-45]);
  const tiny = Float32Array.from([1e-45, -1e-45, 0]);
  const rng = createRng(3);
  const random = Float32Array.from({ length: 4096 }, () => rng.normal() * 0.05);
  for (const data of [ties, denormal, tiny, random]) {
    for (const scheme of ['s8', 'u8'] as const) {
      const q = quantizeWeight(data, [data.length], { scheme });
      assert.deepEqual(Array.from(q.data), referenceQuantize(data, scheme === 's8'), `${scheme} on [${Array.from(data.subarray(0, 6)).join(', ')}...]`);
    }
  }
});

/** quantizeBlockwise's codes for one contiguous vector of whole blocks, written plainly. */
function referenceBlockCodes(x: Float32Array, blockSize: number, symmetric: boolean): number[] {
  const codes: number[] = [];
  for (let k0 = 0; k0 < x.length; k0 += blockSize) {
    const block = x.subarray(k0, k0 + blockSize);
    let lo = 0;
    let hi = 0;
    let extreme = 0;
    for (const v of block) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (Math.abs(v) > Math.abs(extreme)) extreme = v;
    }
    const scale = symmetric ? Math.fround(-extreme / 8) : Math.fround((hi - lo) / 15);
    const zp = symmetric ? 8 : scale === 0 ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
    for (const v of block) codes.push(scale === 0 ? zp : Math.min(15, Math.max(0, Math.round(v / scale) + zp)));
  }
  return codes;
}

/** The codes of vector `r`, unpacked. */
function codesOf(q: BlockQuantized, r: number): number[] {
  return Array.from({ length: q.len }, (_, k) => codeAt(q, r, k));
}

test('quantizeBlockwise rounds ties up (Math.round) and picks the first extreme, as the plain reference does', () => {
  const rng = createRng(11);
  const cases: Float32Array[] = [
    // Symmetric scale −(−8)/8 = 1: x / scale lands on ±k.5 ties.
    Float32Array.from([-8, -7.5, -6.5, -0.5, 0.5, 1.5, 2.5, 6.5, -1.5, -2.5, -3.5, 3.5, 0, -0, 4.5, -4.5]),
    // x and −x tie for the largest magnitude: the first one decides the scale's sign.
    Float32Array.from([0.25, -3, 1, 3, -1.5, 1.5, 0, 2, 0.75, -0.75, 2.25, -2.25, 0.5, 1, -1, 0]),
    Float32Array.from([0.25, 3, 1, -3, -1.5, 1.5, 0, 2, 0.75, -0.75, 2.25, -2.25, 0.5, 1, -1, 0]),
    new Float32Array(16).fill(-0),
    Float32Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? 1e-45 : i % 3 === 1 ? -4e-45 : 0)),
    Float32Array.from({ length: 64 }, () => rng.normal()),
    // A last partial block (37 = 2 × 16 + 5), odd, so a code shares its byte with padding.
    Float32Array.from({ length: 37 }, () => rng.normal()),
  ];
  for (const x of cases) {
    for (const symmetric of [true, false]) {
      const q = quantizeBlockwise(x, 1, x.length, x.length, 1, 16, symmetric);
      assert.deepEqual(codesOf(q, 0), referenceBlockCodes(x, 16, symmetric), `symmetric ${symmetric} on [${Array.from(x.subarray(0, 6)).join(', ')}...]`);
      // The strided path (a column of a [len, 3] matrix) must give the same codes as the contiguous one.
      const m = new Float32Array(x.length * 3);
      for (let k = 0; k < x.length; k++) m[k * 3 + 1] = x[k]!;
      const col = quantizeBlockwise(m, 3, x.length, 1, 3, 16, symmetric);
      assert.deepEqual(codesOf(col, 1), codesOf(q, 0));
      assert.deepEqual(Array.from(col.scales.subarray(q.kBlocks, 2 * q.kBlocks)), Array.from(q.scales));
    }
  }
});

test('quantizeBlockwise: padding holds the zero point, NaN is ignored for the range and coded 0, strided equals contiguous', () => {
  const rng = createRng(5);
  // 3 vectors of 45 elements (blocks 32 + 13): vector 1 has NaNs, vector 2 is all zero.
  const rows = 3;
  const len = 45;
  const x = Float32Array.from({ length: rows * len }, (_, i) => (i >= 2 * len ? 0 : rng.normal()));
  x[len + 3] = NaN;
  x[len + 40] = NaN;
  const xt = new Float32Array(rows * len); // the same vectors as columns of a [len, rows] matrix
  for (let r = 0; r < rows; r++) for (let k = 0; k < len; k++) xt[k * rows + r] = x[r * len + k]!;
  for (const symmetric of [true, false]) {
    const q = quantizeBlockwise(x, rows, len, len, 1, 32, symmetric);
    const t = quantizeBlockwise(xt, rows, len, 1, rows, 32, symmetric);
    assert.deepEqual(Array.from(t.packed), Array.from(q.packed));
    assert.deepEqual(Array.from(t.scales), Array.from(q.scales));
    assert.deepEqual(Array.from(t.zeroPoints), Array.from(q.zeroPoints));
    // The NaN-free reference on vector 1 with its NaNs taken out of the range: same scales.
    const clean = x.slice(len, 2 * len).map((v) => (Number.isNaN(v) ? 0 : v));
    const ref = quantizeBlockwise(clean, 1, len, len, 1, 32, symmetric);
    assert.deepEqual(Array.from(q.scales.subarray(2, 4)), Array.from(ref.scales));
    assert.equal(codeAt(q, 1, 3), 0);
    assert.equal(codeAt(q, 1, 40), 0);
    for (let r = 0; r < rows; r++) {
      for (let k = len; k < 2 * 32; k++) assert.equal(codeAt(q, r, k), q.zeroPoints[r * 2 + 1], `padding code ${k} of vector ${r}`);
    }
    // All-zero vector: scale 0 and every code the zero point, so it dequantizes to exactly 0.
    assert.deepEqual(Array.from(q.scales.subarray(4, 6)).map(Math.abs), [0, 0]);
    for (let k = 0; k < len; k++) assert.equal(codeAt(q, 2, k), q.zeroPoints[4 + (k >> 5)]);
  }
});
