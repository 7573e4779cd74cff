/**
 * Seeded, bounded fuzzing of the ONNX decoder: corrupted real models must either decode or fail with
 * FrugalError('E_DECODE'), never another error, and each decode must stay fast. A model that does
 * decode must also re-encode and decode again (the encoder accepts whatever the decoder produces).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isFrugalError } from '../src/errors.js';
import { decodeMessage, encodeMessageToBytes } from '../src/onnx/proto.js';
import type { ModelProto } from '../src/onnx/proto-types.js';
import { Reader, Writer, WIRE_LEN, concatChunks } from '../src/onnx/wire.js';
import { Rng } from '../src/util/rng.js';

const DATA = path.resolve(process.cwd(), '../shared/data');
const CONFORMANCE = [
  'onnx-backend/node/test_if/model.onnx',
  'onnx-backend/node/test_loop11/model.onnx',
  'onnx-backend/node/test_scan_sum/model.onnx',
  'onnx-backend/node/test_sequence_map_add_2_sequences/model.onnx',
  'onnx-backend/node/test_constant/model.onnx',
  'onnx-backend/light/light_resnet50.onnx',
];
const MUTATIONS_PER_MODEL = 200;
const TIME_BUDGET_MS = 25_000;

/** Where a length-delimited field's length varint sits. */
interface LenField {
  at: number;
  size: number;
  value: number;
}

/** Collects length fields, descending into payloads that parse as messages (bounded depth and count). */
function collectLengths(buf: Uint8Array, start: number, end: number, depth: number, out: LenField[]): boolean {
  const r = new Reader(buf, start, end);
  const found: LenField[] = [];
  const nested: [number, number][] = [];
  try {
    while (r.pos < end) {
      const tagAt = r.pos;
      const wt = r.tag() & 7;
      if (wt !== WIRE_LEN) {
        r.skip(wt, tagAt);
        continue;
      }
      const at = r.pos;
      const e = r.lengthEnd();
      found.push({ at, size: r.pos - at, value: e - r.pos });
      nested.push([r.pos, e]);
      r.pos = e;
    }
  } catch {
    return false; // not a message: a string or raw bytes
  }
  out.push(...found);
  if (depth < 12 && out.length < 20_000) for (const [s, e] of nested) if (e > s) collectLengths(buf, s, e, depth + 1, out);
  return true;
}

function varint(v: number): Uint8Array {
  const w = new Writer(16);
  w.varint64(v >>> 0, Math.floor(v / 4294967296) >>> 0);
  return concatChunks(w.finish());
}

/** Applies one seeded mutation; returns the mutated bytes and a description. */
function mutate(rng: Rng, src: Uint8Array, lens: LenField[]): [Uint8Array, string] {
  const kind = rng.int(lens.length > 0 ? 5 : 4);
  const b = src.slice();
  switch (kind) {
    case 0: {
      const flips: number[] = [];
      for (let i = 1 + rng.int(4); i > 0; i--) {
        const bit = rng.int(b.length * 8);
        b[bit >> 3]! ^= 1 << (bit & 7);
        flips.push(bit);
      }
      return [b, `bit flips at bits ${flips.join(',')}`];
    }
    case 1: {
      const at = rng.int(b.length);
      const n = 1 + rng.int(8);
      for (let i = 0; i < n && at + i < b.length; i++) b[at + i] = rng.int(256);
      return [b, `overwrite ${n} bytes at ${at}`];
    }
    case 2: {
      const cut = rng.int(b.length);
      return [b.subarray(0, cut), `truncate to ${cut} bytes`];
    }
    case 3: {
      const at = rng.int(b.length);
      const n = 1 + rng.int(16);
      const junk = new Uint8Array(n).map(() => rng.int(256));
      return [concatChunks([b.subarray(0, at), junk, b.subarray(at)]), `insert ${n} random bytes at ${at}`];
    }
    default: {
      const f = lens[rng.int(lens.length)]!;
      const choices = [0xffffffff, 2 ** 40, 2 ** 31, 2 ** 32, 2 ** 63, 0, f.value + 1, f.value - 1, f.value + 2, f.value + 7, f.value * 2];
      const forged = Math.max(0, choices[rng.int(choices.length)]!);
      return [concatChunks([b.subarray(0, f.at), varint(forged), b.subarray(f.at + f.size)]), `length at byte ${f.at} (was ${f.value}) forged to ${forged}`];
    }
  }
}

const describe = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

function modelFiles(): string[] {
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.onnx') ? [path.join(dir, e.name)] : []);
  const models = fs.existsSync(path.join(DATA, 'models')) ? walk(path.join(DATA, 'models')).sort() : [];
  return [...models, ...CONFORMANCE.map((p) => path.join(DATA, p)).filter((p) => fs.existsSync(p))];
}

test('fuzz: corrupted models decode or fail with E_DECODE, quickly', (t) => {
  if (!fs.existsSync(DATA)) {
    t.skip(`../shared/data not found: ${DATA}`);
    return;
  }
  const files = modelFiles();
  if (files.length === 0) {
    t.skip(`no models under ${DATA}`);
    return;
  }
  const started = performance.now();
  const counts = { decoded: 0, rejected: 0, total: 0 };
  let slowest = 0;
  files.forEach((file, fileIndex) => {
    const b = fs.readFileSync(file);
    const src = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const lens: LenField[] = [];
    collectLengths(src, 0, src.length, 0, lens);
    const seed = 1000 + fileIndex;
    const rng = new Rng(seed);
    for (let m = 0; m < MUTATIONS_PER_MODEL; m++) {
      if (performance.now() - started > TIME_BUDGET_MS) return;
      const [bytes, what] = mutate(rng, src, lens);
      const where = `${path.relative(DATA, file)}, seed ${seed}, mutation #${m}: ${what}`;
      const t0 = performance.now();
      counts.total++;
      let model: ModelProto | undefined;
      try {
        model = decodeMessage('ModelProto', bytes);
      } catch (e) {
        if (!isFrugalError(e, 'E_DECODE')) assert.fail(`${where}: threw ${describe(e)}`);
        counts.rejected++;
      }
      const ms = performance.now() - t0;
      if (model !== undefined) {
        counts.decoded++;
        try {
          decodeMessage('ModelProto', encodeMessageToBytes('ModelProto', model));
        } catch (e) {
          assert.fail(`${where}: decoded, but re-encoding and decoding again threw ${describe(e)}`);
        }
      }
      slowest = Math.max(slowest, ms);
      assert.ok(ms < 1000, `${where}: took ${ms.toFixed(0)} ms`);
    }
  });
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`onnx fuzz: ${counts.total} mutations of ${files.length} models: ${counts.decoded} decoded, ${counts.rejected} rejected (E_DECODE); slowest ${slowest.toFixed(1)} ms; ${secs} s`);
  assert.ok(counts.total > 0);
});
