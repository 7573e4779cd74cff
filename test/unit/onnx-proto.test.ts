/**
 * The ONNX wire codec: (a) wire-level unit tests on hand-built bytes; (b) conformance: every model and
 * test tensor of ONNX's backend suite and the real models in ../shared/data must re-encode byte-
 * identically (or, where the writer used a non-canonical form, decode back to the same object).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isFrugalError } from '../../src/errors.js';
import type { MessageName, ModelProto, TensorProto, TypeProto } from '../../src/onnx/proto-types.js';
import { decodeMessage, encodeMessage, encodeMessageToBytes, chunksByteLength, MAX_DEPTH } from '../../src/onnx/proto.js';
import { SCHEMA } from '../../src/onnx/schema.js';
import { Reader, Writer, LARGE_BYTES, concatChunks } from '../../src/onnx/wire.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function writeVarint(lo: number, hi: number): Uint8Array {
  const w = new Writer(16);
  w.varint64(lo, hi);
  return concatChunks(w.finish());
}

function expectDecodeError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isFrugalError(e, 'E_DECODE'), `expected FrugalError E_DECODE, got ${String(e)}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// (a) wire format

test('varints: small, 32-bit, 2^53+1 and INT64_MAX as bigint, -1 as ten bytes', () => {
  const cases: [string, number | bigint][] = [
    ['00', 0], ['01', 1], ['7f', 127], ['8001', 128], ['ac02', 300], ['ffffffff07', 2 ** 31 - 1],
    ['8080808010', 2 ** 32], ['ffffffffffffff0f', 2 ** 53 - 1],
  ];
  for (const [h, v] of cases) {
    const r = new Reader(hex(h));
    assert.equal(r.int64(), v, h);
    assert.equal(r.pos, h.length / 2);
  }
  const big = (h: string): number | bigint => new Reader(hex(h)).int64();
  assert.equal(big('8180808080808010'), 2n ** 53n + 1n); // first unsafe integer -> bigint
  assert.equal(big('ffffffffffffffff7f'), 2n ** 63n - 1n); // INT64_MAX
  assert.equal(big('ffffffffffffffffff01'), -1); // -1 is safe -> number
  assert.equal(big('80808080808080808001'), -(2n ** 63n)); // INT64_MIN
  assert.equal(new Reader(hex('ffffffffffffffffff01')).uint64(), 2n ** 64n - 1n);
  // Writer produces the canonical encodings.
  assert.equal(toHex(writeVarint(0xffffffff, 0xffffffff)), 'ffffffffffffffffff01');
  assert.equal(toHex(writeVarint(1, 0x200000)), '8180808080808010');
  // Overlong and truncated varints are decode errors.
  assert.throws(() => new Reader(hex('ffffffffffffffffffff01')).int64(), /varint longer than 10 bytes/);
  assert.throws(() => new Reader(hex('ff')).int64(), /truncated varint at byte 0/);
});

test('int64 fields round-trip 2^53+1, INT64_MAX, INT64_MIN and -1 exactly', () => {
  for (const v of [2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), -1, 0, 2 ** 53 - 1, -(2 ** 53 - 1)]) {
    const bytes = encodeMessageToBytes('AttributeProto', { name: 'x', i: v, floats: [], ints: [v], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] });
    const back = decodeMessage('AttributeProto', bytes);
    assert.equal(back.i, v);
    assert.deepEqual(back.ints, [v]);
  }
  // -1 as int64 is ten bytes on the wire: tag 0x18 then ff x9 01.
  const bytes = encodeMessageToBytes('AttributeProto', { i: -1 } as never);
  assert.equal(toHex(bytes), '18ffffffffffffffffff01');
});

test('negative int32 is sign-extended to 10 bytes and decodes back negative', () => {
  const t = { dims: [], dataType: -2, int32Data: new Int32Array([-1, 5]) } as unknown as TensorProto;
  const bytes = encodeMessageToBytes('TensorProto', t);
  // data_type (2, varint) = -2: 10 bytes; int32_data (5, packed): length 11 = 10 + 1.
  assert.equal(toHex(bytes), '10feffffffffffffffff01' + '2a0b' + 'ffffffffffffffffff01' + '05');
  const back = decodeMessage('TensorProto', bytes);
  assert.equal(back.dataType, -2);
  assert.deepEqual(Array.from(back.int32Data), [-1, 5]);
  // A 5-byte (non-sign-extended) negative int32, as some writers emit, decodes the same.
  assert.equal(decodeMessage('TensorProto', hex('10feffffff0f')).dataType, -2);
});

test('repeated scalars decode both packed and unpacked; encoding follows the schema', () => {
  // AttributeProto.ints (8): unpacked 40 01 40 02 vs packed 42 02 01 02; both mean [1, 2].
  const unpacked = decodeMessage('AttributeProto', hex('4001 4002'));
  const packed = decodeMessage('AttributeProto', hex('42020102'));
  assert.deepEqual(unpacked.ints, [1, 2]);
  assert.deepEqual(packed.ints, [1, 2]);
  assert.equal(toHex(encodeMessageToBytes('AttributeProto', packed)), '40014002'); // proto2 default: unpacked
  // TensorProto.float_data (4): unpacked 25 <f32> x2 vs packed 22 08 <f32><f32>, and a mix of both.
  const one = '0000803f';
  const two = '00000040';
  const a = decodeMessage('TensorProto', hex(`25${one} 25${two}`));
  const b = decodeMessage('TensorProto', hex(`2208${one}${two}`));
  const c = decodeMessage('TensorProto', hex(`25${one} 2204${two}`));
  for (const t of [a, b, c]) {
    assert.ok(t.floatData instanceof Float32Array);
    assert.deepEqual(Array.from(t.floatData), [1, 2]);
  }
  assert.equal(toHex(encodeMessageToBytes('TensorProto', a)), `2208${one}${two}`); // [packed = true]
  // int64_data (7) and uint64_data (11) become BigInt64Array / BigUint64Array.
  const i64 = decodeMessage('TensorProto', hex('3a0b ffffffffffffffffff01 07 5802'));
  assert.deepEqual(Array.from(i64.int64Data), [-1n, 7n]);
  assert.deepEqual(Array.from(i64.uint64Data), [2n]);
  assert.equal(toHex(encodeMessageToBytes('TensorProto', i64)), '3a0bffffffffffffffffff0107' + '5a0102');
  // Packed float whose length is not a multiple of 4 is rejected.
  expectDecodeError(() => decodeMessage('TensorProto', hex('2203000080')), /^Invalid ONNX protobuf: TensorProto\.float_data: packed float_data length 3 is not a multiple of 4 at byte 2$/);
});

test('unknown fields are kept raw and re-emitted after the known ones', () => {
  // NodeProto: op_type (4) "Relu", then unknown field 99 (varint 5) and unknown field 50 (bytes "ab").
  const bytes = hex('2204 52656c75' + '98060 5' + '92030 2 6162');
  const node = decodeMessage('NodeProto', bytes);
  assert.equal(node.opType, 'Relu');
  assert.deepEqual(node.unknownFields?.map(toHex), ['980605', '9203026162']);
  assert.equal(toHex(encodeMessageToBytes('NodeProto', node)), toHex(bytes));
  // A known field with the wrong wire type (op_type as a varint) is kept as unknown too.
  const odd = decodeMessage('NodeProto', hex('2005'));
  assert.equal(odd.opType, undefined);
  assert.equal(toHex(encodeMessageToBytes('NodeProto', odd)), '2005');
});

test('raw_data is a zero-copy view, and large bytes are emitted as the same view', () => {
  const payload = new Uint8Array(LARGE_BYTES * 2).map((_, i) => i & 0xff);
  const bytes = encodeMessageToBytes('TensorProto', { dims: [payload.length], dataType: 2, rawData: payload, name: 'w' } as unknown as TensorProto);
  const t = decodeMessage('TensorProto', bytes);
  assert.ok(t.rawData);
  assert.equal(t.rawData.buffer, bytes.buffer, 'rawData must view the input buffer');
  assert.deepEqual(t.rawData, payload);
  const chunks = encodeMessage('TensorProto', t);
  assert.ok(chunks.includes(t.rawData), 'a large bytes field must be passed through, not copied');
  assert.equal(chunksByteLength(chunks), bytes.length);
  // A small message comes out as exactly one chunk.
  assert.equal(encodeMessage('NodeProto', { opType: 'Relu' } as never).length, 1);
  // Buffer input still gives plain Uint8Array views over the same memory.
  const fromBuffer = decodeMessage('TensorProto', Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  assert.equal(Object.getPrototypeOf(fromBuffer.rawData), Uint8Array.prototype);
  assert.equal(fromBuffer.rawData!.buffer, bytes.buffer);
});

test('strings: UTF-8 (BOM kept), invalid UTF-8 rejected', () => {
  for (const s of ['', 'x', 'ünïcødé ✓', '\u{1F600} emoji', '\uFEFFbom', 'a'.repeat(100) + 'é']) {
    const back = decodeMessage('NodeProto', encodeMessageToBytes('NodeProto', { name: s } as never));
    assert.equal(back.name, s);
  }
  expectDecodeError(() => decodeMessage('NodeProto', hex('1a02c328')), /NodeProto\.name: invalid UTF-8 in string field at byte 2/);
});

test('decode errors are E_DECODE with the field path and byte offset', () => {
  // ModelProto.graph (7) -> GraphProto.node (1) -> NodeProto.attribute (5) with a forged length.
  const node = hex('2a ffffffff0f'); // attribute (5) with length 2^32-1
  const graph = concatChunks([hex('0a'), writeVarint(node.length, 0), node]);
  const model = concatChunks([hex('0807 3a'), writeVarint(graph.length, 0), graph]);
  expectDecodeError(
    () => decodeMessage('ModelProto', model),
    /^Invalid ONNX protobuf: ModelProto\.graph\.node\[0\]\.attribute\[0\]: length 4294967295 at byte 7 runs past the end of the buffer/,
  );
  // ir_version (1) arriving as LEN is kept as unknown; skipping it finds the length missing.
  expectDecodeError(() => decodeMessage('ModelProto', hex('0a')), /^Invalid ONNX protobuf: ModelProto: truncated varint at byte 1$/);
  expectDecodeError(() => decodeMessage('ModelProto', hex('0b')), /wire type 3/); // group start
  expectDecodeError(() => decodeMessage('ModelProto', hex('0001')), /field number 0 at byte 0/);
  expectDecodeError(() => decodeMessage('ModelProto', hex('08ffffffffffffffffffff01')), /ModelProto\.ir_version: varint longer/);
  // producer_name (2) arriving as fixed32 is kept as unknown; only 3 of its 4 bytes are there.
  expectDecodeError(() => decodeMessage('ModelProto', hex('15000080')), /truncated fixed32 at byte 1/);
});

test('deep nesting is an E_DECODE error, not a stack overflow', () => {
  // TypeProto.sequence_type (4) -> Sequence.elem_type (1) -> TypeProto ... nested 5000 deep.
  let inner: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 5000; i++) {
    const elem = concatChunks([hex('0a'), writeVarint(inner.length, 0), inner]);
    inner = concatChunks([hex('22'), writeVarint(elem.length, 0), elem]);
  }
  expectDecodeError(() => decodeMessage('TypeProto', inner), new RegExp(`nested deeper than ${MAX_DEPTH}`));
  // Nesting within the limit decodes.
  let ok: TypeProto = { tensorType: { elemType: 1 } };
  for (let i = 0; i < 20; i++) ok = { sequenceType: { elemType: ok } };
  assert.deepEqual(decodeMessage('TypeProto', encodeMessageToBytes('TypeProto', ok)), ok);
});

test('onnx-data containers round-trip; encoding rejects values of the wrong type', () => {
  const tensor = { dims: [2], dataType: 7, int64Data: new BigInt64Array([1n, -2n]) } as unknown as TensorProto;
  const map = { name: 'm', keyType: 7, keys: [1, 2n ** 60n], stringKeys: [], values: { elemType: 1, tensorValues: [tensor] } };
  const bytes = encodeMessageToBytes('MapProto', map as never);
  const back = decodeMessage('MapProto', bytes);
  assert.deepEqual(back.keys, [1, 2n ** 60n]);
  assert.deepEqual(Array.from(back.values!.tensorValues[0]!.int64Data), [1n, -2n]);
  assert.equal(toHex(encodeMessageToBytes('MapProto', back)), toHex(bytes));
  const opt = decodeMessage('OptionalProto', encodeMessageToBytes('OptionalProto', { elemType: 3, sequenceValue: { elemType: 1 } } as never));
  assert.equal(opt.sequenceValue?.elemType, 1);
  const rejects = (msg: unknown, pattern: RegExp) =>
    assert.throws(() => encodeMessage('NodeProto', msg as never), (e: unknown) => isFrugalError(e, 'E_INVALID_MODEL') && pattern.test((e as Error).message));
  rejects({ name: 5 }, /NodeProto\.name: expected a string/);
  rejects({ attribute: [{ i: 1.5 }] }, /AttributeProto\.i: 1\.5 is not a 64-bit integer/);
  rejects({ attribute: [{ type: 2 ** 40 }] }, /AttributeProto\.type: .* is not an int32/);
});

test('schema table: numbers unique, sorted, and message references resolve', () => {
  for (const [name, s] of Object.entries(SCHEMA)) {
    assert.ok(Object.isFrozen(s), name);
    for (let i = 1; i < s.fields.length; i++) assert.ok(s.fields[i - 1]!.number < s.fields[i]!.number, name);
    for (const f of s.fields) if (f.kind === 'message') assert.ok(SCHEMA[f.messageType!], `${name}.${f.name}`);
  }
  const byName = (m: string, f: string) => SCHEMA[m]!.fields.find((x) => x.name === f)!.number;
  assert.equal(byName('AttributeProto', 'sparseTensor'), 22);
  assert.equal(byName('ModelProto', 'configuration'), 26);
  assert.equal(byName('TypeProto', 'optionalType'), 9);
});

// ---------------------------------------------------------------------------------------------
// (b) conformance on real files

const DATA = path.resolve(process.cwd(), '../shared/data');
const SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple', 'light'];

function readBytes(file: string): Uint8Array {
  const b = fs.readFileSync(file);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function protoForType(type: TypeProto | undefined): MessageName {
  if (type?.sequenceType) return 'SequenceProto';
  if (type?.mapType) return 'MapProto';
  if (type?.optionalType) return 'OptionalProto';
  if (type?.sparseTensorType) return 'SparseTensorProto';
  return 'TensorProto';
}

/** Which message each `input_N.pb` / `output_N.pb` of a test folder holds, from the model's types. */
function pbMessage(model: ModelProto, file: string): MessageName {
  const m = /(input|output)_(\d+)\.pb$/.exec(file);
  const g = model.graph;
  if (!m || !g) return 'TensorProto';
  const inits = new Set(g.initializer.map((t) => t.name));
  const list = m[1] === 'input' ? g.input.filter((v) => !inits.has(v.name)) : g.output;
  return protoForType(list[Number(m[2])]?.type);
}

test('conformance: backend suite and real models re-encode byte-identically', (t) => {
  if (!fs.existsSync(DATA)) {
    t.skip(`../shared/data not found: ${DATA}`);
    return;
  }
  const stats = { identical: 0, equivalent: 0, total: 0 };
  const byType: Record<string, number> = {};
  const failures: string[] = [];
  const check = (name: MessageName, file: string, bytes: Uint8Array): unknown => {
    stats.total++;
    byType[name] = (byType[name] ?? 0) + 1;
    try {
      const msg = decodeMessage(name, bytes);
      // A container chosen from the model's input/output type must parse as that container.
      if (name !== 'TensorProto' && name !== 'ModelProto') assert.equal(msg.unknownFields, undefined, 'unexpected unknown fields');
      const out = encodeMessageToBytes(name, msg);
      if (Buffer.compare(out, bytes) === 0) stats.identical++;
      else {
        assert.deepStrictEqual(decodeMessage(name, out), msg);
        stats.equivalent++;
      }
      return msg;
    } catch (e) {
      failures.push(`${path.relative(DATA, file)} as ${name}: ${(e as Error).message.slice(0, 300)}`);
      return undefined;
    }
  };
  /** A model and the test tensors stored with it, each decoded as the message its graph says. */
  const checkModel = (modelFile: string, pbFiles: string[]): void => {
    const model = check('ModelProto', modelFile, readBytes(modelFile)) as ModelProto | undefined;
    for (const file of pbFiles) check(model ? pbMessage(model, file) : 'TensorProto', file, readBytes(file));
  };
  const dataSets = (dir: string): string[] =>
    fs.readdirSync(dir).filter((d) => d.startsWith('test_data_set_')).sort().flatMap((set) =>
      fs.readdirSync(path.join(dir, set)).filter((f) => f.endsWith('.pb')).sort().map((f) => path.join(dir, set, f)));
  for (const suite of SUITES) {
    const dir = path.join(DATA, 'onnx-backend', suite);
    if (!fs.existsSync(dir)) continue;
    for (const entry of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, entry);
      if (entry.endsWith('.onnx')) {
        // `light/` layout: X.onnx with X_output_N.pb beside it.
        const stem = entry.slice(0, -'.onnx'.length);
        const pbs = fs.readdirSync(dir).filter((f) => f.startsWith(`${stem}_`) && f.endsWith('.pb')).sort();
        checkModel(p, pbs.map((f) => path.join(dir, f)));
      } else if (fs.existsSync(path.join(p, 'model.onnx'))) checkModel(path.join(p, 'model.onnx'), dataSets(p));
    }
  }
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.onnx') ? [path.join(dir, e.name)] : []);
  const modelsDir = path.join(DATA, 'models');
  if (fs.existsSync(modelsDir)) for (const f of walk(modelsDir).sort()) checkModel(f, dataSets(path.dirname(f)));

  console.log(
    `onnx conformance: ${stats.identical} identical / ${stats.equivalent} equivalent / ${stats.total} total ` +
      `(${Object.entries(byType).map(([k, v]) => `${k} ${v}`).join(', ')})`,
  );
  assert.deepEqual(failures, []);
  assert.ok(stats.total > 0);
});
