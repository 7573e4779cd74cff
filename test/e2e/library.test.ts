/**
 * The library does what the CLI does, through the package's public entry only (`'frugal'`, resolved
 * by Node through package.json `exports`, as a user's import is), and the README's Library examples
 * run as written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const ROOT = path.resolve('.');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'frugal-lib-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The package entry as a user sees it (a variable specifier keeps tsc from resolving it to dist/). */
async function frugal(): Promise<typeof import('../../src/index.js')> {
  const specifier = 'frugal';
  return (await import(specifier)) as typeof import('../../src/index.js');
}

test('library: quantize, evaluate, compare and profile a model through the public entry', async () => {
  const lib = await frugal();
  const fp32 = await lib.loadModel(path.join(ROOT, 'models/mnist-cnn.onnx'));
  const q = await lib.applyQuantizeMode(fp32, 'int8-dynamic');
  assert.equal(q.modified, true);
  const quantizedConvs = q.model.graph.nodes.filter((n) => n.opType === 'ConvInteger' || n.opType === 'DynamicQuantizeMatMul' || n.opType === 'MatMulInteger').length;
  assert.ok(quantizedConvs > 0, 'int8-dynamic put integer ops in the graph');
  const out = path.join(tmp, 'int8.onnx');
  await lib.saveModel(q.model, out);

  const a = await lib.evaluateModel(fp32, 'mnist', { limit: 300 });
  const b = await lib.evaluateModel(q.model, 'mnist', { limit: 300 });
  assert.equal(a.count, 300);
  assert.ok(a.accuracy > 0.95, `teacher accuracy ${a.accuracy}`);
  assert.ok(Math.abs(a.accuracy - b.accuracy) <= 0.02, `int8 within 2 points: ${a.accuracy} → ${b.accuracy}`);

  const cmp = await lib.compareModels(path.join(ROOT, 'models/mnist-cnn.onnx'), out, { dataset: 'mnist', limit: 100, latencyRuns: 0 });
  assert.ok(cmp.sizeRatio < 0.5, `int8 file is smaller: ${cmp.sizeRatio}`);

  const record = await lib.profileModels([{ name: 'fp32', model: fp32 }, { name: 'int8', path: out }], { iterations: 5, warmup: 1 });
  assert.deepEqual(record.models.map((m) => m.name), ['fp32', 'int8']);
  for (const m of record.models) {
    assert.ok(m.latencyMs.p50 > 0);
    assert.ok(m.energy.sources.length > 0, 'every energy figure names its source');
  }
  // The pass framework is public too: a one-pass pipeline reports what it did.
  const r = await new lib.PassManager([lib.fp16Pass()]).run(await lib.loadModel(path.join(ROOT, 'models/mnist-cnn.onnx')));
  assert.equal(r.passes[0]!.name, 'convert-fp16');
  assert.equal(r.passes[0]!.modified, true);
});

test("library: the README's Library examples run as written", () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Library'), readme.indexOf('\n## ', readme.indexOf('## Library') + 1));
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 2, 'the Library section has its examples');
  symlinkSync(path.join(ROOT, 'models'), path.join(tmp, 'models'));
  blocks.forEach((code, i) => {
    // Inside the package's folder so that `import … from 'frugal'` resolves through `exports`.
    const script = path.join(ROOT, 'dist', `readme-example-${i}.mjs`);
    writeFileSync(script, code);
    const r = spawnSync(process.execPath, [script], { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
    rmSync(script, { force: true });
    assert.equal(r.status, 0, `example ${i + 1} failed:\n${r.stderr}`);
    assert.ok(r.stdout.trim().length > 0, `example ${i + 1} printed its results`);
    if (i === 0) assert.match(r.stdout, /int8: accuracy 9\d\.\d\d% on 500 test images/);
  });
});
