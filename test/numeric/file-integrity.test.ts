/**
 * Files Frugal writes and reads back carry CRC-32 checksums. Checkpoints (per tensor and for the whole
 * file): one damaged after it was written is refused with an error naming what was hit, instead of
 * resuming with garbage weights; version 1 checkpoints (written before checksums) still load. Profile
 * records: a changed figure is refused; records without the field still load.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { type Checkpoint, decodeCheckpoint, encodeCheckpoint, loadCheckpoint, trainModel } from '../../src/training/index.js';
import { crc32, crc32Portable } from '../../src/util/checksum.js';
import { newRecord, readRecord, writeRecord } from '../../src/profiling/records.js';
import { buildZooModel } from '../../src/zoo/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-ckpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const weight = Float32Array.from({ length: 256 }, (_, i) => Math.cos(i) * 0.1);
const ck: Checkpoint = {
  progress: { epoch: 1, batchInEpoch: 3, step: 20, samples: 999, epochLossSum: 1.5, epochBatches: 3, history: [{ epoch: 0, loss: 0.7, accuracy: 0.9 }] },
  fingerprint: 'fp',
  weights: new Map([['fc.weight', weight], ['fc.bias', Float32Array.of(-0.5, 0.5)]]),
  stats: new Map([['bn.mean', Float32Array.of(0.25)]]),
  optimizer: { kind: 'adamw', step: 20, hyper: { beta1: 0.9 }, slots: { m: [new Float32Array(256).fill(0.01), Float32Array.of(7, 8)], v: [new Float32Array(256).fill(0.02), Float32Array.of(9, 10)] } },
};

/** Where the payload starts and the header entry of a tensor, read from the file as a reader would. */
function layout(bytes: Uint8Array): { start: number; entries: Array<{ group: string; name: string; offset: number; count: number }> } {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + n)));
  return { start: Math.ceil((16 + n) / 4) * 4, entries: header.tensors };
}

/** Overwrites 4 bytes in the middle of a tensor with a float32 of 1e37 (the damage seen in the field). */
function damageTensor(bytes: Uint8Array, group: string, name: string): Uint8Array {
  const out = new Uint8Array(bytes); // a copy (Buffer#slice would be a view)
  const { start, entries } = layout(out);
  const e = entries.find((t) => t.group === group && t.name === name)!;
  new DataView(out.buffer).setFloat32(start + e.offset + Math.floor(e.count / 2) * 4, 1e37, true);
  return out;
}

/** The version-1 layout (no checksums), as the previous release wrote it. */
function encodeV1(c: Checkpoint): Uint8Array {
  const v2 = encodeCheckpoint(c);
  const { start, entries } = layout(v2);
  const payload = v2.subarray(start, v2.length - 4);
  const n = new DataView(v2.buffer).getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(v2.subarray(16, 16 + n)));
  header.version = 1;
  header.tensors = entries.map(({ group, name, offset, count, ...rest }) => ({ group, name, dims: (rest as { dims: number[] }).dims, offset, count }));
  const json = new TextEncoder().encode(JSON.stringify(header));
  const s = Math.ceil((16 + json.length) / 4) * 4;
  const out = new Uint8Array(s + payload.length);
  out.set(new TextEncoder().encode('FRGLCKPT'));
  new DataView(out.buffer).setUint32(8, 1, true);
  new DataView(out.buffer).setUint32(12, json.length, true);
  out.set(json, 16);
  out.set(payload, s);
  return out;
}

describe('checkpoint integrity', () => {
  test('crc32 is the standard CRC-32 (native and portable agree)', () => {
    const text = new TextEncoder().encode('123456789');
    assert.equal(crc32(text), 0xcbf43926);
    assert.equal(crc32Portable(text), 0xcbf43926);
    const big = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 2654435761) >>> 24);
    assert.equal(crc32Portable(big), crc32(big));
    assert.equal(crc32(big.subarray(5000), crc32(big.subarray(0, 5000))), crc32(big), 'continues from a previous value');
  });

  test('an intact checkpoint round-trips', () => {
    assert.deepEqual(decodeCheckpoint(encodeCheckpoint(ck)), ck);
  });

  const hits: Array<[string, string, RegExp]> = [
    ['weight', 'fc.weight', /the bytes of weight 'fc\.weight' fail their checksum/],
    ['stat', 'bn.mean', /running statistic 'bn\.mean' fail/],
    ['opt.m', 'fc.weight', /optimizer state 'm' of 'fc\.weight' fail/],
  ];
  for (const [group, name, pattern] of hits) {
    test(`4 bytes overwritten in ${group} '${name}' are refused, naming it`, () => {
      const bad = damageTensor(encodeCheckpoint(ck), group, name);
      assert.throws(() => decodeCheckpoint(bad, "checkpoint 'run.ckpt'"), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'E_DECODE');
        assert.match(e.message, /^checkpoint 'run\.ckpt' is damaged: /);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }

  test('damage to the header (a digit of the progress) or the trailer is refused', () => {
    const good = encodeCheckpoint(ck);
    const text = new TextDecoder().decode(good.subarray(16, 200));
    const at = 16 + text.indexOf('"samples":999') + '"samples":'.length;
    const header = good.slice();
    header[at] = '1'.charCodeAt(0); // "samples":199 still parses as JSON
    assert.throws(() => decodeCheckpoint(header), /is damaged: its header or padding fails the file checksum/);
    const trailer = good.slice();
    trailer[trailer.length - 1]! ^= 0x10;
    assert.throws(() => decodeCheckpoint(trailer), /is damaged/);
    assert.throws(() => decodeCheckpoint(good.subarray(0, good.length - 4)), { code: 'E_DECODE' });
  });

  test('every single-bit flip anywhere in a small checkpoint is refused or decodes to the original', () => {
    const small: Checkpoint = { ...ck, weights: new Map([['w', Float32Array.of(1, 2, 3)]]), stats: new Map(), optimizer: { kind: 'sgd', step: 1, hyper: {}, slots: {} } };
    const good = encodeCheckpoint(small);
    for (let bit = 0; bit < good.length * 8; bit++) {
      const b = good.slice();
      b[bit >> 3]! ^= 1 << (bit & 7);
      let back: Checkpoint | undefined;
      try {
        back = decodeCheckpoint(b);
      } catch (e) {
        assert.ok((e as { code?: string }).code === 'E_DECODE' || (e as { code?: string }).code === 'E_UNSUPPORTED', `bit ${bit}: ${(e as Error).message}`);
        continue;
      }
      assert.fail(`bit ${bit} flipped, and the checkpoint still decoded (to ${JSON.stringify([...back.weights.values()].map((a) => [...a]))})`);
    }
  });

  test('version 1 checkpoints (no checksums) still load; newer versions are refused clearly', () => {
    const v1 = encodeV1(ck);
    assert.deepEqual(decodeCheckpoint(v1), ck);
    const future = encodeCheckpoint(ck);
    new DataView(future.buffer).setUint32(8, 3, true);
    assert.throws(() => decodeCheckpoint(future, "checkpoint 'x'"), { code: 'E_UNSUPPORTED', message: /format version 3; this Frugal reads versions 1 to 2 \(upgrade Frugal\)/ });
  });

  test('resuming training from a damaged checkpoint fails with the error, not exit 0 with wrong weights', async () => {
    const base = { dataset: 'mnist', limit: 128, epochs: 1, batchSize: 32, seed: 1, intraOpThreads: 1, evaluate: false };
    const file = path.join(dir, 'mlp.ckpt');
    await trainModel({ ...base, model: buildZooModel('mlp', { hidden: [16] }), checkpoint: file, checkpointEvery: 1, stopAfterSteps: 2 });
    const good = readFileSync(file);
    writeFileSync(file, damageTensor(good, 'weight', 'fc1.weight'));
    await assert.rejects(loadCheckpoint(file), /is damaged: the bytes of weight 'fc1\.weight' fail their checksum/);
    await assert.rejects(trainModel({ ...base, model: buildZooModel('mlp', { hidden: [16] }), checkpoint: file, resume: true }), {
      code: 'E_DECODE',
      message: /mlp\.ckpt' is damaged/,
    });
    // The intact file resumes.
    writeFileSync(file, good);
    const r = await trainModel({ ...base, model: buildZooModel('mlp', { hidden: [16] }), checkpoint: file, resume: true });
    assert.equal(r.resumedFrom?.step, 2);
  });
});

describe('profile record integrity', () => {
  test('a record with a changed figure is refused; an intact or checksum-less record loads', async () => {
    const rec = newRecord({ iterations: 3 } as never, { intensity: 481 } as never, []);
    rec.models.push({ name: 'mlp', latencyMs: { p50: 1.25 } } as never);
    const file = path.join(dir, 'record.json');
    await writeRecord(file, rec);
    assert.deepEqual(readRecord(file), rec);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /"integrity": \{\s+"crc32": "[0-9a-f]{8}"/);
    writeFileSync(file, text.replace('"p50": 1.25', '"p50": 1.35'));
    assert.throws(() => readRecord(file), (e: Error & { code?: string }) => e.code === 'E_DATA' && /record .*record\.json is damaged or was edited/.test(e.message));
    const { integrity: _, ...plain } = JSON.parse(text);
    writeFileSync(file, JSON.stringify({ ...plain, models: [{ name: 'mlp', latencyMs: { p50: 9 } }] }));
    assert.equal((readRecord(file).models[0] as unknown as { latencyMs: { p50: number } }).latencyMs.p50, 9);
  });
});
