/**
 * The main job end to end (short form): `frugal demo --quick --json` quantizes both embedded teachers in
 * every mode, evaluates, profiles, marks the Pareto front and writes the report folder.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { runDemo } from '../../src/search/demo.js';
import { paretoFront } from '../../src/search/pareto.js';

test('paretoFront keeps exactly the non-dominated points', () => {
  const pts = [
    { accuracy: 0.99, cost: 10 }, // front: most accurate
    { accuracy: 0.98, cost: 5 }, // front
    { accuracy: 0.98, cost: 6 }, // dominated by the previous one
    { accuracy: 0.97, cost: 5 }, // dominated (same cost, less accurate)
    { accuracy: 0.9, cost: 1 }, // front: cheapest
    { accuracy: null, cost: 0.5 }, // incomparable
  ];
  assert.deepEqual(paretoFront(pts), [true, true, false, false, true, false]);
});

test('frugal demo --quick: progress per teacher and variant on stderr (not a TTY: one plain line per step), tables on stdout, every teacher × variant in report.json', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-demo-'));
  try {
    const r = spawnSync(process.execPath, [path.resolve('dist/src/cli/bin.js'), 'demo', '--quick', '--out', dir], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    // stderr is a pipe here: plain progress lines, one per step, in order.
    const progress = r.stderr.split('\n').filter(Boolean);
    assert.ok(!r.stderr.includes('\x1b['), 'no terminal escapes when stderr is not a TTY');
    for (const [ti, t] of ['mnist-cnn', 'spam-transformer'].entries()) {
      for (const [vi, v] of ['fp32', 'int8-dynamic', 'int8-static', 'int4', 'fp16'].entries()) {
        const head = `[teacher ${ti + 1}/2, variant ${vi + 1}/5] ${t} ${v}: `;
        assert.ok(progress.some((l) => l.startsWith(head + (v === 'fp32' ? 'copying' : 'quantizing'))), `progress: ${head}quantizing`);
        assert.ok(progress.some((l) => l.startsWith(head + 'evaluating accuracy')), `progress: ${head}evaluating`);
      }
      assert.ok(progress.some((l) => l.startsWith(`[teacher ${ti + 1}/2] ${t}: profiling 5 variants side by side`)));
    }
    assert.ok(progress.findIndex((l) => l.includes('spam-transformer')) > progress.findIndex((l) => l.includes('mnist-cnn')));
    assert.match(r.stdout, /^mnist-cnn: MNIST digits/m);
    assert.match(r.stdout, /^Report: /m);

    const j = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as { teachers: Array<{ name: string; variants: Array<Record<string, unknown>> }> };
    assert.deepEqual(j.teachers.map((t) => t.name), ['mnist-cnn', 'spam-transformer']);
    for (const t of j.teachers) {
      assert.deepEqual(t.variants.map((v) => v.mode), ['fp32', 'int8-dynamic', 'int8-static', 'int4', 'fp16']);
      for (const v of t.variants) {
        for (const k of ['accuracy', 'sizeBytes', 'latencyP50Ms', 'joulesPerInference', 'energySource', 'pareto']) assert.ok(k in v, `${t.name}/${v.mode}: ${k}`);
        assert.ok((v.accuracy as number) > 0.9, `${t.name}/${v.mode} accuracy ${v.accuracy}`);
        assert.match(v.energySource as string, /^(measured|estimated):/);
        assert.ok(existsSync(v.file as string));
      }
      assert.ok(t.variants.some((v) => v.pareto), 'someone is on the front');
      const base = t.variants[0]!.sizeBytes as number;
      assert.ok(t.variants.filter((v) => v.mode !== 'fp32').every((v) => (v.sizeBytes as number) < base), 'every variant is smaller than fp32');
    }
    // Beside quantization: pruned, distilled, linear-attention and pruned→int8 candidates from the optimize search, and its pick.
    const withOpt = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as { teachers: Array<{ name: string; optimize: { chosen: { pipeline: string; accuracyDeltaPoints: number; file: string } | null; candidates: Array<{ pipeline: string; status: string }> } }> };
    for (const t of withOpt.teachers) {
      assert.deepEqual(t.optimize.candidates.map((c) => c.pipeline), ['int8-dynamic', 'structured-0.5', 'distill-w0.5', 'structured-0.5+int8-dynamic', 'structured-0.75+attention-linear']);
      // The efficient-attention variant is built for the transformer and refused, with the reason, for the CNN.
      const att = t.optimize.candidates.find((c) => c.pipeline === 'structured-0.75+attention-linear')! as { status: string; reason?: string };
      if (t.name === 'spam-transformer') assert.ok(['evaluated', 'rejected'].includes(att.status) && !/could not be built/.test(att.reason ?? ''), `spam: the attention variant is built (${att.status}: ${att.reason})`);
      else assert.match(att.reason ?? '', /no attention to convert/);
      for (const c of t.optimize.candidates) assert.ok(['evaluated', 'rejected', 'skipped'].includes(c.status));
      assert.ok(t.optimize.chosen, `${t.name}: int8-dynamic at least stays within a point`);
      assert.ok(t.optimize.chosen.accuracyDeltaPoints >= -1);
      assert.ok(existsSync(t.optimize.chosen.file));
      assert.ok(existsSync(path.join(dir, t.name, 'optimize', 'report.html')));
    }
    assert.match(r.stdout, /^mnist-cnn: pruned, distilled, linear-attention and the optimize pick/m);
    assert.match(r.stdout, /^Optimize pick \(lowest energy within 1 point/m);
    const html = readFileSync(path.join(dir, 'report.html'), 'utf8');
    assert.ok(html.includes('<svg') && !/\s(src|href)="https?:/.test(html), 'self-contained report with charts');
    assert.ok(existsSync(path.join(dir, 'report.md')) && existsSync(path.join(dir, 'report.json')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing teacher model is an E_IO error naming the file, and no report folder is left behind', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'frugal-no-models-'));
  try {
    const out = path.join(root, 'report');
    await assert.rejects(runDemo({ outDir: out, quick: true, root }), (e: unknown) => isFrugalError(e, 'E_IO') && e.message.includes(path.join(root, 'models', 'mnist-cnn.onnx')) && /reinstall/.test(e.message));
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
