/**
 * External data is read only from regular files inside the model's folder, with exactly the bytes the
 * tensor needs. A FIFO, socket, device or folder as a location, the folder itself ('.'), or a length
 * shorter than the tensor must give every command one clear line naming the tensor and the location,
 * never a hang, an EISDIR, a blamed output file, or ONNX Runtime's own log line.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DataType } from '../../src/ir/dtype.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { decodeMessage, encodeMessageToBytes, loadModel, saveModel } from '../../src/onnx/index.js';
import { isFrugalError } from '../../src/errors.js';
import { assertCleanError, runFrugal } from '../helpers/cli.js';

let dir: string;
const W_BYTES = 64 * 32 * 4;

/** A model whose initializer `w` (float32[64,32]) lives at `location` with the given entries. */
function writeExternalModel(file: string, location: string, entries: Record<string, string> = {}): void {
  const proto = decodeMessage('ModelProto', readFileSync(path.join(dir, 'small.onnx')));
  const w = proto.graph!.initializer.find((t) => t.name === 'w')!;
  w.rawData = undefined;
  w.dataLocation = 1;
  w.externalData = [{ key: 'location', value: location }, ...Object.entries(entries).map(([key, value]) => ({ key, value }))];
  writeFileSync(file, encodeMessageToBytes('ModelProto', proto));
}

/** A fresh folder holding model.onnx whose `w` points at `location`. */
function caseDir(name: string, location: string, entries?: Record<string, string>): { sub: string; model: string } {
  const sub = path.join(dir, name);
  mkdirSync(sub, { recursive: true });
  const model = path.join(sub, 'model.onnx');
  writeExternalModel(model, location, entries);
  return { sub, model };
}

/** Every command that reads the model must refuse it with one line matching `pattern`, writing nothing. */
function assertAllRefuse(sub: string, model: string, pattern: RegExp): void {
  const before = readdirSync(sub).sort();
  // A hang (the bug with a FIFO) shows as a timeout: spawnSync kills the child and the exit code is -1.
  const frugal = (...args: string[]) => runFrugal(sub, args, 60_000);
  assertCleanError(frugal('inspect', model), pattern);
  assertCleanError(frugal('inspect', model, '--json'), pattern);
  assertCleanError(frugal('convert', model, '-o', path.join(sub, 'out.onnx')), pattern);
  assertCleanError(frugal('convert', model, '-o', path.join(sub, 'out2.onnx'), '--external-data'), pattern);
  assertCleanError(frugal('quantize', model, '-o', path.join(sub, 'q.onnx'), '--mode', 'fp16'), pattern);
  assertCleanError(frugal('run', model), pattern);
  assert.deepEqual(readdirSync(sub).sort(), before, 'nothing written');
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-extdata-'));
  const b = new GraphBuilder('small');
  const x = b.input('x', DataType.FLOAT, ['batch', 64]);
  const w = b.constant('w', DataType.FLOAT, [64, 32], Float32Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i)));
  b.output(b.op('MatMul', [x, w]), 'y', DataType.FLOAT, ['batch', 32]);
  await saveModel(b.build(), path.join(dir, 'small.onnx'), { externalData: false });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('external data is read only from regular files', () => {
  for (const withLength of [false, true]) {
    const entries: Record<string, string> = withLength ? { offset: '0', length: String(W_BYTES) } : {};
    const how = withLength ? 'with offset and length' : 'with no length';

    test(`a FIFO ${how} is refused by every command (no hang)`, () => {
      const { sub, model } = caseDir(`fifo-${withLength}`, 'pipe.bin', entries);
      execFileSync('mkfifo', [path.join(sub, 'pipe.bin')]);
      assertAllRefuse(sub, model, /tensor 'w': external data location 'pipe\.bin' is a FIFO \(named pipe\), not a regular file/);
    });

    test(`a folder ${how} is refused by every command, naming the tensor and location`, () => {
      const { sub, model } = caseDir(`folder-${withLength}`, 'weights', entries);
      mkdirSync(path.join(sub, 'weights'));
      assertAllRefuse(sub, model, /tensor 'w': external data location 'weights' is a folder, not a regular file/);
    });

    test(`location '.' ${how} is refused as the model's folder itself (not blamed on a symlink)`, () => {
      const { sub, model } = caseDir(`dot-${withLength}`, '.', entries);
      assertAllRefuse(sub, model, /tensor 'w': external data location '\.' names the model's folder itself, not a file/);
    });
  }

  test('a socket and a character device are refused', async () => {
    const { sub, model } = caseDir('socket', 'sock.bin');
    const server = net.createServer().listen(path.join(sub, 'sock.bin'));
    await new Promise((r) => server.once('listening', r));
    try {
      await assert.rejects(loadModel(model), (e) => isFrugalError(e, 'E_EXTERNAL_DATA') && /'sock\.bin' is a socket, not a regular file/.test(e.message));
    } finally {
      server.close();
    }
    // /dev/zero would give endless bytes; reached through a symlink inside the folder it is still refused
    // (as leaving the folder), and a device node inside the folder cannot be made without root, so the
    // descriptor check is exercised through the FIFO above.
  });

  test('a data file swapped for a FIFO after the model was loaded is refused when read (no hang)', async () => {
    const { sub, model } = caseDir('swapped', 'weights.bin', { offset: '0', length: String(W_BYTES) });
    writeFileSync(path.join(sub, 'weights.bin'), Buffer.alloc(W_BYTES));
    const m = await loadModel(model);
    rmSync(path.join(sub, 'weights.bin'));
    execFileSync('mkfifo', [path.join(sub, 'weights.bin')]);
    // Opened non-blocking and checked on the descriptor: without a writer, a blocking open never returns.
    assert.throws(() => m.graph.lookup('w')!.initializer!.bytes(), (e) => isFrugalError(e, 'E_EXTERNAL_DATA') && /'weights\.bin' is not a regular file/.test(e.message));
  });

  test('external data shorter than the tensor needs is refused by every command, inspect included', () => {
    const { sub, model } = caseDir('short-length', 'weights.bin', { offset: '0', length: '100' });
    writeFileSync(path.join(sub, 'weights.bin'), Buffer.alloc(W_BYTES));
    assertAllRefuse(sub, model, /tensor 'w': external data 'weights\.bin' has length 100 bytes but float32\[64,32\] needs 8192/);
  });

  test('a longer length is refused too; no length reads exactly the bytes the tensor needs', async () => {
    const long = caseDir('long-length', 'weights.bin', { offset: '0', length: String(W_BYTES + 4) });
    writeFileSync(path.join(long.sub, 'weights.bin'), Buffer.alloc(W_BYTES + 4));
    await assert.rejects(loadModel(long.model), /has length 8196 bytes but float32\[64,32\] needs 8192/);
    // A file with trailing bytes (e.g. a shared side file) and no length: the tensor takes what it needs.
    const none = caseDir('no-length', 'weights.bin', { offset: '4' });
    const data = Buffer.alloc(W_BYTES + 64);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    writeFileSync(path.join(none.sub, 'weights.bin'), data);
    const m = await loadModel(none.model);
    const w = m.graph.lookup('w')!.initializer!;
    assert.equal(w.byteLength, W_BYTES);
    assert.deepEqual(Buffer.from(w.bytes()), data.subarray(4, 4 + W_BYTES));
  });

  test("ONNX Runtime's own log lines stay off stderr unless asked for (session log severity)", () => {
    // ORT itself reading a folder as external data (a path handed straight to createSession) logs an
    // error line of its own; by default only the FrugalError reaches the caller.
    const { sub, model } = caseDir('ort-log', 'weights');
    mkdirSync(path.join(sub, 'weights'));
    const script = (opts: string) =>
      `import { createSession } from ${JSON.stringify(path.resolve('dist/src/runtime/session.js'))};\n` +
      `try { await createSession(${JSON.stringify(model)}${opts}); } catch (e) { console.log(e.code); }`;
    const quiet = spawnSync(process.execPath, ['--input-type=module', '-e', script('')], { encoding: 'utf8' });
    assert.equal(quiet.stdout.trim(), 'E_RUNTIME');
    assert.equal(quiet.stderr, '', 'no ORT log line by default');
    const loud = spawnSync(process.execPath, ['--input-type=module', '-e', script(', { logSeverity: 3 }')], { encoding: 'utf8' });
    assert.equal(loud.stdout.trim(), 'E_RUNTIME');
    assert.match(loud.stderr, /onnxruntime/, 'ORT logs when the severity lets it');
  });

  test('frugal --verbose shows ONNX Runtime warnings; without it stderr stays empty', () => {
    const proto = decodeMessage('ModelProto', readFileSync(path.join(dir, 'small.onnx')));
    proto.graph!.initializer.push({ ...proto.graph!.initializer[0]!, name: 'unused_w' });
    const file = path.join(dir, 'unused-initializer.onnx');
    writeFileSync(file, encodeMessageToBytes('ModelProto', proto));
    const quiet = runFrugal(dir, ['run', file], 60_000);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
    const loud = runFrugal(dir, ['run', file, '--verbose'], 60_000);
    assert.equal(loud.code, 0, loud.stderr);
    assert.match(loud.stderr, /Removing initializer 'unused_w'/);
  });
});
