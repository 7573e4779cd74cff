/**
 * `frugal prune` end to end in real processes: the JSON keys the issue lists, with figures that hold
 * (structured pruning cuts parameters and FLOPs; magnitude reaches its sparsity; --sparse-storage
 * shrinks the file and loads in ORT); fine-tuning on real MNIST reports accuracy at each stage; bad input
 * is one clear line, exit code 2 (usage) or 1, and no output file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModel } from '../../src/onnx/index.js';
import { createSession, feedSpecsOf, randomFeeds } from '../../src/runtime/index.js';
import { assertCleanError, type CliResult, runFrugal } from '../helpers/cli.js';

const TEACHER = path.resolve('models/mnist-cnn.onnx');
let dir: string;
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
let teacherHash: string;

function frugal(...args: string[]): CliResult {
  return runFrugal(dir, args, 300_000);
}
function json(r: CliResult): Record<string, any> {
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr})`);
  return JSON.parse(r.stdout) as Record<string, any>;
}

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-prune-'));
  teacherHash = sha(TEACHER);
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  assert.equal(sha(TEACHER), teacherHash, 'the input model is never modified');
});

async function runs(file: string): Promise<void> {
  const m = await loadModel(file);
  const s = await createSession(m);
  try {
    await s.run(randomFeeds(feedSpecsOf(m), { seed: 1, dims: { batch: 2 } }));
  } finally {
    await s.release();
  }
}

describe('frugal prune', () => {
  test('structured --json: the issue\'s keys, fewer parameters and FLOPs, a model that runs', async () => {
    const out = path.join(dir, 'structured.onnx');
    const j = json(frugal('prune', TEACHER, '--method', 'structured', '--ratio', '0.5', '-o', out, '--json'));
    for (const k of ['method', 'sparsity', 'parameterCount', 'flops', 'sizeBytes', 'latencyRatio']) assert.ok(k in j, `key ${k}`);
    assert.equal(j.method, 'structured');
    assert.ok(j.parameterCount.after < j.parameterCount.before / 3);
    assert.ok(j.flops.after < j.flops.before / 3);
    assert.ok(j.sizeBytes.after < j.sizeBytes.before / 3 && j.sizeBytes.after === statSync(out).size);
    assert.ok(j.latencyRatio > 0 && Number.isFinite(j.latencyRatio));
    assert.match(j.note, /removed/);
    await runs(out);
  });

  test('magnitude --sparse-storage: sparsity reached, smaller file, says there is no CPU speedup', async () => {
    const out = path.join(dir, 'sparse.onnx');
    const j = json(frugal('prune', TEACHER, '--method', 'magnitude', '--sparsity', '0.9', '--scope', 'global', '--sparse-storage', '-o', out, '--json'));
    assert.ok(Math.abs(j.sparsity - 0.9) < 1e-4);
    assert.equal(j.parameterCount.after, j.parameterCount.before);
    assert.ok(j.sizeBytes.after < j.sizeBytes.before * 0.4, JSON.stringify(j.sizeBytes));
    assert.match(j.note, /no speedup/);
    assert.ok(j.sparseStorage.converted.includes('hidden.weight'));
    await runs(out);
  });

  test('fine-tuning on MNIST reports accuracy before, after pruning and after fine-tuning; text output', () => {
    const out = path.join(dir, 'tuned.onnx');
    const r = frugal('prune', TEACHER, '--method', 'structured', '--ratio', '0.5', '--dataset', 'mnist', '--epochs', '1', '--limit', '1024', '--eval-limit', '500', '-o', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /accuracy [\d.]+% before, [\d.]+% after pruning, [\d.]+% after fine-tuning/);
    assert.match(r.stdout, /latency ×[\d.]+ \(measured/);
    assert.ok(existsSync(out));
  });

  test('--help has examples', () => {
    const r = frugal('prune', '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:/);
    assert.match(r.stdout, /--sparse-storage/);
  });

  const bad: Array<[string, string[], RegExp, number]> = [
    ['sparsity ≥ 1', ['--method', 'magnitude', '--sparsity', '1'], /--sparsity must be in \[0, 1\)/, 2],
    ['negative sparsity', ['--method', 'magnitude', '--sparsity', '-0.2'], /--sparsity/, 2],
    ['N ≥ M', ['--method', 'nm', '--pattern', '4:4'], /--pattern.*0 < N < M/, 2],
    ['a ratio that removes everything', ['--method', 'structured', '--ratio', '1'], /--ratio.*every/, 2],
    ['unknown method', ['--method', 'lottery'], /--method must be one of magnitude, nm, structured/, 2],
    ['flag of another method', ['--method', 'nm', '--ratio', '0.5'], /--ratio applies to --method structured/, 2],
    ['dataset that does not fit', ['--method', 'structured', '--dataset', 'spam'], /--dataset spam does not fit/, 2],
    ['taylor without data', ['--method', 'structured', '--importance', 'taylor'], /taylor needs --dataset/, 2],
  ];
  for (const [what, args, pattern, code] of bad) {
    test(`bad input: ${what}`, () => {
      const out = path.join(dir, `bad-${what.replace(/\W+/g, '-')}.onnx`);
      assertCleanError(frugal('prune', TEACHER, ...args, '-o', out), pattern, code);
      assert.ok(!existsSync(out), 'no output file');
    });
  }

  test('bad input: a model with nothing prunable, and the input as output', () => {
    const q = path.resolve('../shared/data/models/already-quantized/conv_qdq_s8s8.onnx');
    if (existsSync(q)) {
      const out = path.join(dir, 'q.onnx');
      assertCleanError(frugal('prune', q, '--method', 'magnitude', '-o', out), /nothing prunable.*not a constant initializer/, 1);
      assert.ok(!existsSync(out));
    }
    assertCleanError(frugal('prune', TEACHER, '--method', 'nm', '-o', TEACHER), /it is the input model/, 2);
  });
});
