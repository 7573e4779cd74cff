/**
 * A quantize run that changes nothing says so first (issue 11, item 2): one headline ("0 of 3 nodes
 * quantized: all weights below 4,096 elements; --min-elements to change"), a warning and exit 0, or
 * exit 1 and no output with --strict; --min-elements lowers the threshold.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { saveModel } from '../../src/onnx/index.js';
import { modeOutcome, passOutcome } from '../../src/passes/outcome.js';
import { applyQuantizeMode } from '../../src/passes/registry.js';
import { assertCleanError, runFrugal } from '../helpers/cli.js';

let dir: string;
let small: string;

/** A 3-layer MLP of 32×32 weights (1,024 elements each: below int8-dynamic's default 4,096). */
function smallMlp() {
  const b = new GraphBuilder('mlp');
  let h = b.input('x', DataType.FLOAT, ['n', 32]);
  for (let l = 0; l < 3; l++) {
    const w = b.constant(`w${l}`, DataType.FLOAT, [32, 32], Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i * 0.37 + l) * 0.2));
    h = b.op('Relu', [b.op('MatMul', [h, w])]);
  }
  b.output(h, 'y', DataType.FLOAT, ['n', 32]);
  return b.build({ opsetImports: { '': 17 } });
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-outcome-'));
  small = path.join(dir, 'small.onnx');
  await saveModel(smallMlp(), small);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('quantize on a model whose weights are all below the threshold: headline first, warning, exit 0', () => {
  const r = runFrugal(dir, ['quantize', small, '-o', 'out.onnx', '--mode', 'int8-dynamic']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], '0 of 3 nodes quantized: all weights below 4,096 elements; --min-elements to change');
  assert.match(lines[1]!, /^warning: nothing changed/);
  const j = JSON.parse(runFrugal(dir, ['quantize', small, '-o', 'out2.onnx', '--mode', 'int8-dynamic', '--json']).stdout) as Record<string, unknown>;
  assert.equal(j.changedNodes, 0);
  assert.equal(j.candidateNodes, 3);
  assert.match(j.headline as string, /^0 of 3 nodes quantized/);
});

test('--strict: nothing changed is an error (exit 1) and nothing is written', () => {
  const r = runFrugal(dir, ['quantize', small, '-o', 'strict.onnx', '--mode', 'int8-dynamic', '--strict']);
  assertCleanError(r, /0 of 3 nodes quantized: all weights below 4,096 elements.*nothing written \(--strict\)/);
  assert.equal(existsSync(path.join(dir, 'strict.onnx')), false);
});

test('--min-elements lowers the threshold: every MatMul quantized, and --strict passes', () => {
  const r = runFrugal(dir, ['quantize', small, '-o', 'q.onnx', '--mode', 'int8-dynamic', '--min-elements', '256', '--strict']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n')[0], '3 of 3 nodes quantized');
  assertCleanError(runFrugal(dir, ['quantize', small, '-o', 'x.onnx', '--mode', 'fp16', '--min-elements', '4']), /--min-elements applies to the int8 and int4 modes/, 2);
});

test('modeOutcome reads int4 and fp16 stats too: per-pass headlines for q4f16, reasons grouped', async () => {
  const r = await applyQuantizeMode(smallMlp(), 'q4f16');
  const o = modeOutcome(r.passes);
  assert.equal(o.passes.length, 2);
  assert.equal(o.passes[0]!.headline, '3 of 3 nodes quantized', '1,024-element weights reach int4\'s default threshold');
  assert.match(o.passes[1]!.headline, /^\d+ of \d+ nodes converted to float16/);
  assert.match(o.headline, /^[a-z0-9-]+: 3 of 3 nodes quantized; convert-fp16: \d+ of \d+ nodes converted to float16/);
  const mixed = passOutcome('p', { quantized: [], skipped: [{ detail: 'small weight (12 < 4096 elements)' }, { detail: "excluded by name" }, { detail: 'small weight (40 < 4096 elements)' }] })!;
  assert.equal(mixed.headline, '0 of 3 nodes quantized: 2 weight below 4,096 elements, 1 excluded by name; --min-elements to change');
});
