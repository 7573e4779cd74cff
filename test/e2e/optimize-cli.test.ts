/**
 * `frugal optimize` end to end in real processes: the JSON keys the issue lists, with files that exist
 * and a chosen model that runs; the reports carry the efficiency metrics and the Pareto chart; no
 * candidate within the drop is exit 0 with a message, or 1 with --require; bad input is one clear line
 * and leaves no output folder behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel } from '../../src/onnx/index.js';
import { createSession, feedSpecsOf, randomFeeds } from '../../src/runtime/index.js';
import { assertCleanError, BIN, runFrugal } from '../helpers/cli.js';

const TEACHER = path.resolve('models/mnist-cnn.onnx');
const SPAM = path.resolve('models/spam-transformer.onnx');
let dir: string;
const SMALL = ['--validation', '300', '--train-limit', '256', '--profile-seconds', '0.2'];

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-optimize-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('--json gives chosen, front, candidates and searchSeconds; the files exist and the chosen model runs', async () => {
  const out = path.join(dir, 'out');
  const r = runFrugal(dir, ['optimize', TEACHER, '--dataset', 'mnist', '--max-drop', '1', '--candidates', 'int8-dynamic', '--candidates', 'structured-0.25', '--out', out, '--json', ...SMALL], 300_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no progress lines with --json');
  const j = JSON.parse(r.stdout);
  for (const k of ['chosen', 'front', 'candidates', 'searchSeconds']) assert.ok(k in j, `key ${k}`);
  for (const k of ['pipeline', 'file', 'accuracy', 'accuracyDeltaPoints', 'latencyRatio', 'joulesPerInference', 'energySource', 'sizeBytes']) assert.ok(k in j.chosen, `chosen.${k}`);
  assert.ok(['int8-dynamic', 'structured-0.25'].includes(j.chosen.pipeline));
  assert.ok(j.chosen.accuracyDeltaPoints >= -1);
  assert.match(j.chosen.energySource, /^(measured|estimated):/);
  assert.deepEqual(j.candidates.map((c: { pipeline: string }) => c.pipeline), ['int8-dynamic', 'structured-0.25']);
  for (const c of j.candidates) assert.ok(c.status === 'evaluated' || (c.status === 'rejected' && /more than --max-drop 1/.test(c.reason)), `${c.pipeline}: ${c.status}`);
  assert.ok(j.front.length >= 1 && j.front.every((c: { pareto: boolean }) => c.pareto));
  for (const c of j.front) if (c.pipeline !== 'fp32') assert.ok(existsSync(c.file), `front member ${c.file}`);
  assert.ok(existsSync(j.chosen.file));
  const m = await loadModel(j.chosen.file);
  const s = await createSession(m);
  try {
    const out1 = await s.run(randomFeeds(feedSpecsOf(m), { seed: 1, dims: { batch: 2 } }));
    assert.ok(Object.values(out1).length === 1);
  } finally {
    await s.release();
  }
  const md = readFileSync(path.join(out, 'report.md'), 'utf8');
  assert.match(md, /## Efficiency metrics/);
  assert.match(md, /J\/inference \| Wh per 1,000 \| gCO2e per 1,000 \| rating/);
  assert.match(md, /gCO2e\/kWh/);
  assert.match(md, /\| (estimated|measured) \(/);
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /id="chart-pareto"><svg/);
  assert.match(html, /Validation accuracy against energy/);
  const saved = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
  assert.equal(saved.chosen.pipeline, j.chosen.pipeline);

  // A rerun into the same folder reads every candidate from the cache.
  const again = JSON.parse(runFrugal(dir, ['optimize', TEACHER, '--dataset', 'mnist', '--max-drop', '1', '--candidates', 'int8-dynamic', '--candidates', 'structured-0.25', '--out', out, '--json', ...SMALL], 300_000).stdout);
  assert.ok(again.candidates.every((c: { cached: boolean }) => c.cached));
});

test('no candidate within --max-drop: exit 0 with a message, or 1 with --require', () => {
  const args = ['optimize', TEACHER, '--dataset', 'mnist', '--max-drop', '0', '--candidates', 'structured-0.75', '--out', path.join(dir, 'none'), ...SMALL];
  const r = runFrugal(dir, args, 300_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /no candidate stays within --max-drop 0/);
  const req = runFrugal(dir, [...args, '--require'], 300_000);
  assert.equal(req.code, 1);
  assert.match(req.stdout, /no candidate stays within --max-drop 0/);
});

test('a budget too small to try anything: exit 0 and says so (1 with --require); the reference is still reported', () => {
  const out = path.join(dir, 'tiny');
  const r = runFrugal(dir, ['optimize', TEACHER, '--dataset', 'mnist', '--max-drop', '1', '--budget', '1s', '--out', out, '--validation', '300']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: the time budget of 1 s ran out after 0 of 19 candidates/);
  assert.match(r.stdout, /no candidate was tried within the time budget; raise --budget/);
  const j = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
  assert.equal(j.chosen, null);
  assert.ok(j.candidates.every((c: { skippedBy: string }) => c.skippedBy === 'budget'));
  assert.equal(j.reference.pipeline, 'fp32');
  assert.equal(runFrugal(dir, ['optimize', TEACHER, '--dataset', 'mnist', '--max-drop', '1', '--budget', '1s', '--out', out, '--validation', '300', '--require']).code, 1);
});

test('Ctrl-C mid-search leaves no model, report or temporary file in the output folder (only whole cache entries)', async () => {
  const out = path.join(dir, 'interrupted');
  const child = spawn(process.execPath, [BIN, 'optimize', TEACHER, '--dataset', 'mnist', '--max-drop', '1', '--out', out], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 3000));
  child.kill('SIGINT');
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  assert.ok(signal === 'SIGINT' || code === 130, `killed by SIGINT (code ${code}, signal ${signal})`);
  const files = existsSync(out) ? readdirSync(out, { recursive: true }).map(String) : [];
  assert.deepEqual(files.filter((f) => !f.startsWith('.frugal-cache')), [], 'nothing but the cache folder');
  assert.deepEqual(files.filter((f) => f.endsWith('.tmp')), [], 'no temporary file');
  // Every cache entry left is whole: its JSON and model both there.
  const entries = files.filter((f) => /\.(json|onnx)$/.test(f)).map((f) => f.replace(/\.(json|onnx)$/, ''));
  for (const e of new Set(entries)) assert.ok(entries.filter((x) => x === e).length === 2 || !files.includes(`${e}.json`), `cache entry ${e} is whole`);
});

test('bad input: one clear line, usage exit code, no output folder', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--max-drop', '-1'], /--max-drop must be a number ≥ 0, got '-1'/],
    [['--max-drop', '1', '--budget=-5m'], /--budget must be a positive duration/],
    [['--max-drop', '1', '--budget', '0s'], /--budget must be a positive duration/],
    [['--max-drop', '1', '--objective', 'speed'], /--objective must be one of energy, latency, size/],
    [['--max-drop', '1', '--candidates', 'int9'], /unknown candidate 'int9'/],
  ];
  for (const [extra, pattern] of cases) {
    const out = path.join(dir, 'bad');
    assertCleanError(runFrugal(dir, ['optimize', TEACHER, '--dataset', 'mnist', '--out', out, ...extra]), pattern, 2);
    assert.ok(!existsSync(out), `no output folder after ${extra.join(' ')}`);
  }
  const out = path.join(dir, 'bad');
  assertCleanError(runFrugal(dir, ['optimize', SPAM, '--dataset', 'mnist', '--max-drop', '1', '--out', out]), /--dataset mnist does not fit this model/, 2);
  assert.ok(!existsSync(out));
  assertCleanError(runFrugal(dir, ['optimize', path.join(dir, 'missing.onnx'), '--dataset', 'mnist', '--max-drop', '1']), /is not an existing file/, 2);
  assertCleanError(runFrugal(dir, ['optimize', TEACHER, '--dataset', 'mnist']), /missing --max-drop/, 2);
  const file = path.join(dir, 'a-file');
  writeFileSync(file, 'keep me');
  assertCleanError(runFrugal(dir, ['optimize', TEACHER, '--dataset', 'mnist', '--max-drop', '1', '--out', file]), /--out '.*a-file' is a file/, 2);
  assert.equal(readFileSync(file, 'utf8'), 'keep me');
});
