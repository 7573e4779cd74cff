/**
 * `frugal attention` end to end (real processes), `frugal inspect` naming each layer's attention form,
 * and recovery: the spam teacher converted to a narrow window (which costs accuracy) and fine-tuned
 * with the original as teacher ends within 1 point of the original on the full held-out split.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { verify } from '../../src/ir/verify.js';
import { loadModel } from '../../src/onnx/index.js';
import { describeAttention } from '../../src/passes/attention/convert.js';
import { recoverAttention } from '../../src/training/attention-recovery.js';
import { assertCleanError, runFrugal } from '../helpers/cli.js';

const TEACHER = path.resolve('models/spam-transformer.onnx');
const dir = mkdtempSync(path.join(tmpdir(), 'frugal-attn-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('frugal attention', () => {
  test('converts the spam teacher; --json lists the layers; inspect names the form', () => {
    const out = path.join(dir, 'spam-block.onnx');
    const r = runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'block', '--window', '16', '--global', '2', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { form: string; window: number; converted: Array<{ softmax: string }>; unconverted: unknown[] };
    assert.equal(j.form, 'block');
    assert.deepEqual(j.converted.map((c) => c.softmax), ['layer0.attn.softmax', 'layer1.attn.softmax']);
    assert.deepEqual(j.unconverted, []);
    const insp = runFrugal(process.cwd(), ['inspect', out, '--json']);
    assert.equal(insp.code, 0, insp.stderr);
    const attention = (JSON.parse(insp.stdout) as { attention: Array<{ layer: string; form: string; window: number; globalTokens: number }> }).attention;
    assert.deepEqual(attention.map((a) => [a.layer, a.form, a.window, a.globalTokens]), [['layer0.attn', 'block', 16, 2], ['layer1.attn', 'block', 16, 2]]);
    const text = runFrugal(process.cwd(), ['inspect', TEACHER]);
    assert.match(text.stdout, /layer0\.attn\.softmax\s+softmax/);
  });

  test('text output names the converted layers and the file', () => {
    const out = path.join(dir, 'spam-linear.onnx');
    const r = runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'linear', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /converted 2 attention layer\(s\) to linear/);
    assert.match(r.stdout, /layer1\.attn\.softmax\s+head size 16, padding mask kept/);
    assert.ok(statSync(out).size > 0);
  });

  test('bad input: clear one-line errors, exit codes, nothing written, the input untouched', () => {
    const before = readFileSync(TEACHER);
    const out = path.join(dir, 'never.onnx');
    assertCleanError(runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'wide', '-o', out]), /--to must be one of linear, performer, window, block, got 'wide'/, 2);
    assertCleanError(runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'window', '--window', '0', '-o', out]), /--window must be an integer ≥ 1/, 2);
    assertCleanError(runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'linear', '--window', '8', '-o', out]), /--window applies to --to window and --to block/, 2);
    assertCleanError(runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'linear', '--epochs', '2', '-o', out]), /needs --dataset/, 2);
    assertCleanError(runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'linear', '-o', TEACHER]), /refusing to write .*it is the input model/, 2);
    assertCleanError(runFrugal(process.cwd(), ['attention', path.resolve('models/mnist-cnn.onnx'), '--to', 'linear', '-o', out]), /model 'cnn' has no attention to convert \(no Softmax node\)/, 1);
    assertCleanError(runFrugal(process.cwd(), ['attention', TEACHER, '--to', 'linear']), /(-o|--output)/, 2);
    assert.ok(!existsSync(out), 'nothing written on error');
    assert.deepEqual(readFileSync(TEACHER), before, 'the input is untouched');
  });
});

describe('recovery fine-tuning of the converted spam teacher', () => {
  test('window radius 2 loses accuracy; fine-tuning with the original as teacher ends within 1 point', async () => {
    const original = await loadModel(TEACHER);
    const r = await recoverAttention(original, { form: 'window', window: 2, dataset: 'spam', epochs: 1, limit: 512 });
    verify(r.model);
    assert.deepEqual(describeAttention(r.model).map((l) => l.form), ['window', 'window']);
    assert.equal(r.accuracy.count, 1209, 'the full held-out split');
    assert.ok(r.accuracy.converted < r.accuracy.original, `conversion alone costs accuracy (${r.accuracy.converted} vs ${r.accuracy.original})`);
    assert.ok(r.accuracy.recovered > r.accuracy.converted, `fine-tuning recovers (${r.accuracy.recovered} vs ${r.accuracy.converted})`);
    assert.ok(r.accuracy.recovered >= r.accuracy.original - 0.01, `within 1 point: ${r.accuracy.recovered} vs ${r.accuracy.original}`);
  });
});
