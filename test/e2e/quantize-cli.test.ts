/**
 * `frugal quantize` and `frugal compare` end to end on the embedded MNIST teacher: real processes,
 * real files, real data. Each mode writes the file transformers.js expects, reports what it did, keeps
 * the accuracy (checked by `compare` on MNIST test images), and never writes over or grows past its input.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliResult, assertCleanError, runFrugal } from '../helpers/cli.js';
import { after, before, describe, test } from 'node:test';
import { QUANTIZE_MODES } from '../../src/passes/registry.js';

const TEACHER = path.resolve('models/mnist-cnn.onnx');
let dir: string;

function frugal(...args: string[]): CliResult {
  return runFrugal(dir, [...args], 180_000);
}

function json(r: { code: number; stdout: string; stderr: string }): Record<string, any> {
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr})`);
  return JSON.parse(r.stdout) as Record<string, any>;
}


const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
let teacherHash: string;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-quantize-'));
  teacherHash = sha(TEACHER);
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  assert.equal(sha(TEACHER), teacherHash, 'the input model is never modified');
});

describe('frugal quantize on the MNIST teacher', () => {
  for (const mode of Object.keys(QUANTIZE_MODES)) {
    test(`--mode ${mode}: folder output named for transformers.js, stats, accuracy kept`, () => {
      const extra = QUANTIZE_MODES[mode]!.calibrated ? ['--calibrate', 'mnist', '--calibration-size', '64'] : [];
      const out = json(frugal('quantize', TEACHER, '-o', `${mode}/`, '--mode', mode, ...extra, '--json'));
      const file = path.join(dir, mode, QUANTIZE_MODES[mode]!.fileName);
      assert.equal(out.output, file);
      assert.ok(existsSync(file));
      assert.equal(out.mode, mode);
      assert.equal(out.outputBytes, statSync(file).size);
      assert.equal(out.inputBytes, statSync(TEACHER).size);
      assert.ok(out.outputBytes < out.inputBytes, `${mode}: ${out.outputBytes} bytes out, ${out.inputBytes} in`);
      assert.equal(out.passes[0].name, 'prepare-graph');
      assert.equal(out.passes.length, 1 + QUANTIZE_MODES[mode]!.create({ calibration: [] as never }).length);
      const stats = out.passes[1].stats;
      assert.ok(out.modified, `${mode} changed the teacher`);
      // Quantizers list what they quantized; the fp16 pass counts the nodes it converted.
      const count =
        stats.quantized === undefined
          ? (stats.convertedNodes as number)
          : Array.isArray(stats.quantized)
            ? stats.quantized.length
            : Object.values(stats.quantized as Record<string, number>).reduce((a, b) => a + b, 0);
      assert.ok(count > 0, `${mode}: stats say what was converted`);
      for (const s of stats.skipped ?? []) assert.ok(s.detail ?? s.reason, 'every skipped node says why');
      // The quantized teacher still classifies MNIST: compare on 300 real test images.
      const cmp = json(frugal('compare', TEACHER, file, '--dataset', 'mnist', '--limit', '300', '--runs', '2', '--json'));
      assert.ok(cmp.accuracy.reference > 0.95, `teacher accuracy ${cmp.accuracy.reference}`);
      assert.ok(cmp.accuracy.dropPoints <= (mode === 'int4' || mode === 'q4f16' ? 2 : 1), `${mode}: accuracy drop ${cmp.accuracy.dropPoints} points`);
      assert.ok(cmp.top1Agreement >= 0.97, `${mode}: top-1 agreement ${cmp.top1Agreement}`);
      assert.ok(cmp.maxRelativeError > 0, `${mode}: a quantized model is not bit-identical`);
      assert.ok(Math.abs(cmp.sizeRatio - out.outputBytes / out.inputBytes) < 1e-12);
    });
  }

  test('text output lists the pass and the sizes', () => {
    const r = frugal('quantize', TEACHER, '-o', 'text.onnx', '--mode', 'int8-dynamic');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /quantize/);
    assert.match(r.stdout, /wrote .*text\.onnx: .* → .*×/);
  });

  test('--exclude by op type leaves those nodes in float and says so', () => {
    const out = json(frugal('quantize', TEACHER, '-o', 'ex.onnx', '--mode', 'int8-dynamic', '--exclude', 'Gemm', '--exclude', 'MatMul', '--json'));
    const stats = out.passes[1].stats;
    assert.equal(stats.quantized.filter((q: any) => q.opType === 'Gemm' || q.opType === 'MatMul').length, 0);
    assert.ok(stats.skipped.some((s: any) => /exclu/.test(s.detail)), JSON.stringify(stats.skipped));
  });

  test('external data in, external data out', () => {
    assert.equal(frugal('convert', TEACHER, '-o', 'ext/model.onnx', '--external-data').code, 0);
    const out = json(frugal('quantize', 'ext/model.onnx', '-o', 'ext-q/', '--mode', 'int8-dynamic', '--json'));
    assert.ok(out.externalDataPath, 'the quantized model keeps its weights in a side file');
    assert.ok(existsSync(out.externalDataPath));
    const cmp = json(frugal('compare', 'ext/model.onnx', out.output, '--dataset', 'mnist', '--limit', '100', '--runs', '0', '--json'));
    assert.ok(cmp.top1Agreement >= 0.97);
  });

  test('bad flags and bad inputs give one-line errors and write nothing', () => {
    writeFileSync(path.join(dir, 'notes.txt'), 'this is not an ONNX model\n');
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'int3'), /--mode must be one of int8-dynamic, .*got 'int3'/, 2);
    assertCleanError(frugal('quantize', TEACHER, '--mode', 'int8-dynamic'), /missing -o/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx'), /missing --mode/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'int8-static'), /needs calibration data/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'int8-dynamic', '--method', 'entropy'), /--method applies to int8-static only/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'int8-static', '--calibrate', 'mnist', '--method', 'median'), /--method must be one of/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'int4', '--block-size', '48'), /power of two/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'fp16', '--block-size', '32'), /--block-size applies to int4/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'int8-dynamic', '--bogus'), /bogus/, 2);
    assertCleanError(frugal('quantize', TEACHER, '-o', 'x.onnx', '--mode', 'int8-dynamic', '--exclude', 'no_such_node'), /no_such_node/, 2);
    assertCleanError(frugal('quantize', 'notes.txt', '-o', 'x.onnx', '--mode', 'int8-dynamic'), /notes\.txt/, 1);
    assertCleanError(frugal('quantize', 'missing.onnx', '-o', 'x.onnx', '--mode', 'int8-dynamic'), /missing\.onnx/, 1);
    assert.ok(!existsSync(path.join(dir, 'x.onnx')), 'no output after an error');
    // Never over the input.
    assertCleanError(frugal('quantize', TEACHER, '-o', TEACHER, '--mode', 'int8-dynamic'), /refusing to write/, 2);
    assert.equal(sha(TEACHER), teacherHash);
    assertCleanError(frugal('compare', TEACHER, 'notes.txt'), /notes\.txt/, 1);
    assertCleanError(frugal('compare', TEACHER, TEACHER, '--dataset', 'mnist', '--inputs', '.'), /not both/, 2);
  });
});

describe('frugal compare', () => {
  test('a model compared with itself: size ratio 1, error 0, agreement 1, no accuracy change', () => {
    const r = json(frugal('compare', TEACHER, TEACHER, '--dataset', 'mnist', '--limit', '200', '--runs', '3', '--json'));
    assert.deepEqual(Object.keys(r).sort(), [
      'accuracy', 'candidate', 'cosineSimilarity', 'inputSource', 'latency', 'maxRelativeError', 'meanRelativeError', 'outputs', 'reference', 'samples', 'sizeRatio', 'top1Agreement',
    ]);
    assert.equal(r.sizeRatio, 1);
    assert.equal(r.maxRelativeError, 0);
    assert.equal(r.meanRelativeError, 0);
    assert.ok(Math.abs(r.cosineSimilarity - 1) < 1e-9);
    assert.equal(r.top1Agreement, 1);
    assert.equal(r.inputSource, 'dataset:mnist');
    assert.equal(r.accuracy.count, 200);
    assert.equal(r.accuracy.dropPoints, 0);
    assert.equal(r.accuracy.reference, r.accuracy.candidate);
    assert.deepEqual(Object.keys(r.latency).sort(), ['candidateMs', 'ratio', 'ratioHigh', 'ratioLow', 'referenceMs', 'runs', 'verdict']);
    assert.ok(r.latency.ratioLow <= r.latency.ratioHigh && ['faster', 'slower', 'within noise'].includes(r.latency.verdict));
    assert.ok(r.latency.referenceMs > 0 && r.latency.candidateMs > 0 && r.latency.runs === 3);
    assert.deepEqual(Object.keys(r.outputs[0]).sort(), ['cosineSimilarity', 'elements', 'maxRelativeError', 'meanRelativeError', 'name', 'top1Agreement']);
    assert.equal(r.outputs[0].elements, 200 * 10);
  });

  test('without data it uses seeded random inputs; --help documents the JSON keys', () => {
    const r = json(frugal('compare', TEACHER, TEACHER, '--runs', '0', '--json'));
    assert.equal(r.inputSource, 'random');
    assert.equal(r.accuracy, null);
    assert.equal(r.latency, null);
    const help = frugal('compare', '--help').stdout;
    for (const k of ['sizeRatio', 'maxRelativeError', 'meanRelativeError', 'cosineSimilarity', 'top1Agreement', 'dropPoints', 'ratio']) assert.match(help, new RegExp(k));
  });
});

describe('quantize mode registry', () => {
  test('every mode of the issue is there, with transformers.js file names', () => {
    for (const m of ['int8-dynamic', 'int8-static', 'int4', 'fp16']) assert.ok(m in QUANTIZE_MODES, m);
    assert.equal(QUANTIZE_MODES['int8-dynamic']!.fileName, 'model_quantized.onnx');
    assert.equal(QUANTIZE_MODES.int4!.fileName, 'model_q4.onnx');
    assert.equal(QUANTIZE_MODES.fp16!.fileName, 'model_fp16.onnx');
    const names = Object.values(QUANTIZE_MODES).map((m) => m.fileName);
    assert.equal(new Set(names).size, names.length, 'file names are distinct');
    for (const [key, m] of Object.entries(QUANTIZE_MODES)) {
      assert.equal(m.name, key);
      assert.match(m.fileName, /^model_[a-z0-9]+\.onnx$/);
      assert.ok(m.description.length > 10);
      assert.equal(Object.isFrozen(m), true);
      assert.equal(m.calibrated, typeof m.calibrationFor === 'function', `${key}: calibrated modes say how to calibrate`);
    }
    assert.ok(Object.isFrozen(QUANTIZE_MODES));
    const help = frugal('quantize', '--help').stdout;
    for (const m of Object.values(QUANTIZE_MODES)) assert.match(help, new RegExp(`${m.name}\\s+${m.fileName.replace('.', '\\.')}`));
  });
});
