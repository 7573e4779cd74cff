/**
 * `frugal distill` end to end in a real process: the JSON keys the issue lists with figures that hold
 * together, the student written and loadable, and one clear error per bad input with nothing written.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { convertToFloat16 } from '../../src/passes/precision/fp16.js';
import { saveModel } from '../../src/onnx/index.js';
import { buildZooModel } from '../../src/zoo/index.js';
import { evaluateModel } from '../../src/evaluation/index.js';
import { loadModel } from '../../src/onnx/index.js';
import { assertCleanError, runFrugal } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-distill-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
cpSync('models/mnist-cnn.onnx', path.join(dir, 'teacher.onnx'));
const frugal = (...args: string[]) => runFrugal(dir, args);

describe('frugal distill', () => {
  test('--json: teacher and student figures, retained accuracy, FLOPs ratio, baseline, labelled energy; the student is written', async () => {
    const r = frugal('distill', '--teacher', 'teacher.onnx', '--student', 'width=0.45', '--dataset', 'mnist', '-o', 'small.onnx', '--limit', '640', '--threads', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const who of ['teacher', 'student']) for (const k of ['accuracy', 'parameterCount', 'flops', 'latencyP50Ms']) assert.equal(typeof j[who][k], 'number', `${who}.${k}`);
    assert.ok(Math.abs(j.accuracyRetained - j.student.accuracy / j.teacher.accuracy) < 1e-12);
    assert.ok(j.flopsRatio > 0.15 && j.flopsRatio <= 0.25, `flops ratio ${j.flopsRatio}`);
    assert.ok(Math.abs(j.flopsRatio - j.student.flops / j.teacher.flops) < 1e-12);
    assert.ok(j.student.parameterCount < j.teacher.parameterCount / 4);
    assert.equal(typeof j.baselineAccuracy, 'number');
    assert.equal(j.teacherMode, 'cached');
    assert.match(j.trainEnergy.source, /^(measured|estimated):/);
    assert.equal(j.trainEnergy.estimated, j.trainEnergy.source.startsWith('estimated'));
    // The written student scores what the JSON says.
    const acc = (await evaluateModel(await loadModel(path.join(dir, 'small.onnx')), 'mnist')).accuracy;
    assert.equal(acc, j.student.accuracy);
    const nb = JSON.parse(frugal('distill', '--teacher', 'teacher.onnx', '--student', 'cnn:channels=4/8,hidden=16', '--dataset', 'mnist', '-o', 'nb.onnx', '--limit', '128', '--no-baseline', '--hidden-loss', '--json').stdout);
    assert.equal('baselineAccuracy' in nb, false);
    assert.equal(nb.studentSource, 'zoo');
    assert.deepEqual(nb.hiddenLoss, { weight: 1 });
    // The saved student is the plain architecture: no projection head left in it.
    const saved = await loadModel(path.join(dir, 'nb.onnx'));
    assert.deepEqual(saved.graph.outputs.map((o) => o.name), ['logits']);
  });

  test('--checkpoint/--resume: a resumed run reports where it resumed and writes the same student', async () => {
    const args = ['distill', '--teacher', 'teacher.onnx', '--student', 'cnn:channels=4/8', '--dataset', 'mnist', '--limit', '256', '--batch', '32', '--threads', '1', '--no-baseline', '--checkpoint', 'kd.ckpt', '--checkpoint-every', '2', '--json'];
    const first = frugal(...args, '-o', 'a.onnx');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(existsSync(path.join(dir, 'kd.ckpt')), true);
    const again = frugal(...args, '-o', 'b.onnx', '--resume');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).resumedFrom, { epoch: 1, step: 8 });
    const [a, b] = [await loadModel(path.join(dir, 'a.onnx')), await loadModel(path.join(dir, 'b.onnx'))];
    for (const v of a.graph.initializers()) assert.ok(Buffer.from(v.initializer!.bytes()).equals(Buffer.from(b.graph.values.get(v.name)!.initializer!.bytes())), v.name);
  });

  test('bad input: one clear line each, nothing written', async () => {
    const half = buildZooModel('cnn', { channels: [4, 8] });
    convertToFloat16(half, { to: 'float16', provider: 'cpu' });
    await saveModel(half, path.join(dir, 'half.onnx'));
    await saveModel(buildZooModel('cnn', { classes: 5 }), path.join(dir, 'five.onnx'));
    const base = ['distill', '--teacher', 'teacher.onnx', '--dataset', 'mnist', '-o', 'bad.onnx', '--limit', '64'];
    assertCleanError(frugal(...base, '--student', 'width=0.5', '--temperature', '0'), /temperature must be a positive number, got 0/, 2);
    assertCleanError(frugal(...base, '--student', 'width=0.5', '--alpha', '1.2'), /alpha must be in \[0, 1\], got 1.2/, 2);
    assertCleanError(frugal(...base, '--student', 'width=0.001'), /rounds conv1's channels \(32\) to zero/, 2);
    assertCleanError(frugal(...base, '--student', 'five.onnx'), /teacher predicts 10 classes and the student 5/, 2);
    assertCleanError(frugal(...base, '--student', 'half.onnx'), /float16/, 1);
    assertCleanError(frugal(...base, '--student', 'drop-layers'), /layer dropping applies to transformer/, 1);
    assertCleanError(frugal(...base, '--student', 'width=0.5', '--dataset', 'spam'), /a text model takes 'input_ids'/, 2);
    assertCleanError(frugal('distill', '--teacher', 'teacher.onnx', '--student', 'width=0.5', '--dataset', 'mnist', '-o', 'teacher.onnx'), /refusing to write 'teacher.onnx'/, 2);
    assertCleanError(frugal('distill', '--student', 'width=0.5', '--dataset', 'mnist', '-o', 'x.onnx'), /missing --teacher/, 2);
    assertCleanError(frugal(...base, '--student', 'width=0.5', '--hidden-weight', '2'), /--hidden-weight needs --hidden-loss/, 2);
    assert.equal(existsSync(path.join(dir, 'bad.onnx')), false);
    assert.match(frugal('distill', '--help').stdout, /Examples:[\s\S]*frugal distill --teacher/);
  });
});
