/**
 * `frugal train` and `frugal eval` end to end: real processes on real MNIST (small --limit), a model
 * that eval scores, resume through the CLI, and one-line errors for bad flags.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliResult, assertCleanError, runFrugal } from '../helpers/cli.js';
import { after, before, describe, test } from 'node:test';

let dir: string;
before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-train-cli-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

function frugal(...args: string[]): CliResult {
  return runFrugal(dir, [...args], 120_000);
}


describe('frugal train / eval', () => {
  test('train --json writes a model that eval --json scores', () => {
    const r = frugal('train', '--model', 'mlp', '--dataset', 'mnist', '-o', 'mlp.onnx', '--limit', '1000', '--epochs', '2', '--batch', '32', '--schedule', 'cosine', '--warmup', '5', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { output: string; epochs: Array<{ accuracy: number; loss: number }>; finalLoss: number; samplesPerSec: number; wallSeconds: number; accuracy: number };
    assert.equal(out.epochs.length, 2);
    assert.ok(Number.isFinite(out.finalLoss) && out.samplesPerSec > 0 && out.wallSeconds > 0);
    assert.ok(existsSync(path.join(dir, 'mlp.onnx')));
    const e = frugal('eval', 'mlp.onnx', '--dataset', 'mnist', '--json');
    assert.equal(e.code, 0, e.stderr);
    // Energy is reported with its source; on a machine without counters it is an estimate, and says so.
    const energy = (JSON.parse(r.stdout) as { energy: { joules: number | null; sources: string[]; estimated: boolean } }).energy;
    assert.ok(energy.sources.length > 0 && energy.sources.every((src) => /^(measured|estimated):/.test(src)), JSON.stringify(energy));
    assert.equal(energy.estimated, energy.sources.some((src) => src.startsWith('estimated:')));
    if (energy.joules !== null) assert.ok(energy.joules > 0);
    // Each epoch has its own window (from the first step, evaluation included), nested in the run's.
    const epochs = (JSON.parse(r.stdout) as { epochs: Array<{ energy: { joules: number | null; sources: string[]; estimated: boolean } }> }).epochs;
    let sum = 0;
    for (const e of epochs) {
      assert.ok(e.energy && e.energy.sources.length > 0, JSON.stringify(e));
      assert.equal(e.energy.estimated, energy.estimated, 'an epoch is measured the way the run is');
      if (e.energy.joules !== null) sum += e.energy.joules;
    }
    if (energy.joules !== null) assert.ok(sum <= energy.joules * (1 + 1e-9), `epochs ${sum} J within the run's ${energy.joules} J`);
    const ev = JSON.parse(e.stdout) as { accuracy: number; count: number };
    assert.equal(ev.count, 2000);
    assert.equal(ev.accuracy, out.accuracy, 'eval agrees with the trainer’s last evaluation');
    assert.ok(ev.accuracy > 0.7, `accuracy ${ev.accuracy} after 2 short epochs`);
    const limited = JSON.parse(frugal('eval', 'mlp.onnx', '--dataset', 'mnist', '--limit', '100', '--json').stdout) as { count: number };
    assert.equal(limited.count, 100);
  });

  test('a CNN trains with checkpoints and resumes through the CLI', () => {
    const args = ['train', '--model', 'cnn', '--dataset', 'mnist', '-o', 'cnn.onnx', '--limit', '256', '--batch', '64', '--checkpoint', 'cnn.ckpt', '--checkpoint-every', '2', '--threads', '1', '--json'];
    const first = frugal(...args);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(existsSync(path.join(dir, 'cnn.ckpt')));
    // Same run with --epochs 2 and --resume: continues from the end of epoch 1.
    const second = frugal(...args, '--epochs', '2', '--resume', '-o', 'cnn2.onnx');
    assert.equal(second.code, 0, second.stderr);
    const out = JSON.parse(second.stdout) as { resumedFrom: { epoch: number; step: number }; steps: number; epochs: unknown[] };
    assert.deepEqual(out.resumedFrom, { epoch: 1, step: 4 });
    assert.equal(out.steps, 8);
    assert.equal(out.epochs.length, 2);
  });

  test('train --precision fp16 reports its loss scale and saves fp32 master weights', () => {
    const r = frugal('train', '--model', 'mlp', '--dataset', 'mnist', '-o', 'mlp16.onnx', '--limit', '512', '--precision', 'fp16', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { precision: string; lossScale: { scale: number; skippedSteps: number; goodSteps: number }; accuracy: number; steps: number };
    assert.equal(out.precision, 'fp16');
    assert.deepEqual(out.lossScale, { scale: 65536, goodSteps: out.steps, skippedSteps: 0 });
    const e = frugal('eval', 'mlp16.onnx', '--dataset', 'mnist', '--json');
    assert.equal(e.code, 0, e.stderr);
    assert.equal((JSON.parse(e.stdout) as { accuracy: number }).accuracy, out.accuracy);
    assertCleanError(frugal('train', '--model', 'mlp', '--dataset', 'mnist', '-o', 'x.onnx', '--precision', 'fp8'), /--precision must be one of fp32, fp16/, 2);
  });

  test('bad flags give one-line errors', () => {
    assertCleanError(frugal('train', '--model', 'mlp', '--dataset', 'mnist', '-o', 'x.onnx', '--optimizer', 'adam'), /--optimizer must be one of adamw, sgd/, 2);
    assertCleanError(frugal('train', '--model', 'mlp', '--dataset', 'mnist', '-o', 'x.onnx', '--lr', 'fast'), /--lr must be a number > 0/, 2);
    assertCleanError(frugal('train', '--model', 'mlp', '--dataset', 'cifar', '-o', 'x.onnx'), /--dataset must be one of mnist, spam, got 'cifar'/, 2);
    assertCleanError(frugal('train', '--model', 'nope', '--dataset', 'mnist', '-o', 'x.onnx'), /neither a zoo model/, 2);
    assertCleanError(frugal('train', '--model', 'mlp', '--dataset', 'mnist'), /missing -o/, 2);
    assertCleanError(frugal('train', '--model', 'mlp', '--dataset', 'mnist', '-o', 'x.onnx', '--resume'), /--resume needs --checkpoint/, 2);
    assertCleanError(frugal('train', '--model', 'mlp', '--dataset', 'spam', '-o', 'x.onnx'), /text model takes 'input_ids'/, 2);
    assertCleanError(frugal('eval', 'missing.onnx', '--dataset', 'mnist'), /missing\.onnx/, 1);
    assertCleanError(frugal('eval', 'x.onnx'), /missing --dataset/, 2);
    assert.ok(!existsSync(path.join(dir, 'x.onnx')));
  });
});
