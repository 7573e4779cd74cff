/**
 * Seeded, bounded fuzzing of the ONNX decoder: corrupted real models must either decode or fail with
 * FrugalError('E_DECODE'), never another error, and each decode must stay fast. A model that does
 * decode must also re-encode and decode again (the encoder accepts whatever the decoder produces).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isFrugalError } from '../../src/errors.js';
import { decodeMessage, encodeMessageToBytes } from '../../src/onnx/proto.js';
import type { ModelProto } from '../../src/onnx/proto-types.js';
import { Rng } from '../../src/util/rng.js';
import { collectLengths, type LenField, modelFiles, mutate } from '../helpers/fuzz.js';

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

const describe = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

test('fuzz: corrupted models decode or fail with E_DECODE, quickly', (t) => {
  if (!fs.existsSync(DATA)) {
    t.skip(`../shared/data not found: ${DATA}`);
    return;
  }
  const files = modelFiles(DATA, CONFORMANCE);
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
