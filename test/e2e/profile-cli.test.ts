/**
 * `frugal profile` end to end: real processes on zoo models. JSON keys, two models side by side with
 * ratios to the first, report/record files, and bad flags as one-line usage errors.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliResult, runFrugal } from '../helpers/cli.js';
import { after, before, describe, test } from 'node:test';
import { saveModel } from '../../src/onnx/index.js';
import { buildZooModel } from '../../src/zoo/index.js';

let dir: string;

function frugal(...args: string[]): CliResult {
  return runFrugal(dir, ['profile', ...args], 120_000);
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-profile-cli-'));
  await saveModel(buildZooModel('cnn'), path.join(dir, 'cnn.onnx'), { externalData: false });
  await saveModel(buildZooModel('mlp'), path.join(dir, 'mlp.onnx'), { externalData: false });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const FAST = ['--iterations', '20', '--warmup', '2'];

describe('frugal profile', () => {
  test('--json prints a versioned record with every figure and its source', () => {
    const r = frugal('mlp.onnx', ...FAST, '--batch', '2', '--json');
    assert.equal(r.code, 0, r.stderr);
    const rec = JSON.parse(r.stdout);
    assert.equal(rec.schemaVersion, 1);
    assert.equal(rec.kind, 'frugal-profile');
    for (const k of ['machine', 'settings', 'carbon', 'meters', 'models']) assert.ok(k in rec, k);
    const m = rec.models[0];
    for (const k of ['latencyMs', 'throughput', 'cpu', 'peakRssBytes', 'energy', 'carbon', 'rating', 'sources']) assert.ok(k in m, k);
    for (const k of ['p50', 'p90', 'p99', 'mean', 'stddev']) assert.equal(typeof m.latencyMs[k], 'number', k);
    assert.equal(m.inferences, 40);
    assert.ok(m.energy.joulesPerInference > 0);
    assert.ok(m.energy.sources.length > 0);
    assert.equal(rec.carbon.gCo2ePerKwh, 481);
    assert.equal(r.stderr, '', 'no progress noise with --json');
  });

  test('two models side by side with ratios to the first, grid intensity and sources printed; files written', () => {
    const r = frugal('cnn.onnx', 'mlp.onnx', ...FAST, '--region', 'FR', '--pue', '1.2', '--report', 'out.html', '--markdown', 'out.md', '--record', 'out.json');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines.find((l) => l.startsWith('cnn.onnx'))!, /\s1×\s+1×$/);
    assert.match(lines.find((l) => l.startsWith('mlp.onnx'))!, /\s[\d.e-]+×\s+[\d.e-]+×$/);
    assert.match(r.stdout, /carbon: 56 gCO2e\/kWh \(FR; .*2023\) × PUE 1\.2/);
    assert.match(r.stdout, /energy: (measured:rapl \(measured|estimated:cpu-time-tdp \(ESTIMATED)/);
    const html = readFileSync(path.join(dir, 'out.html'), 'utf8');
    assert.ok((html.match(/<svg[\s>]/g) ?? []).length >= 2);
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'out.json'), 'utf8')).models.length, 2);
    assert.match(readFileSync(path.join(dir, 'out.md'), 'utf8'), /\| cnn\.onnx \|/);
    assert.match(r.stdout, /wrote HTML report: out\.html/);
  });

  test('bad flags and inputs → one-line errors, no stack trace, no report', () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['mlp.onnx', '--ep', 'tpu'], /--ep must be one of cpu, cuda, /, 2],
      [['mlp.onnx', '--iterations', '5', '--duration', '1'], /--iterations or --duration, not both/, 2],
      [['mlp.onnx', '--batch', '0'], /--batch must be an integer ≥ 1/, 2],
      [['mlp.onnx', '--region', 'XX'], /no grid intensity for region 'XX'.*--intensity/, 2],
      [['mlp.onnx', '--pue', '0.5'], /--pue must be a number ≥ 1/, 2],
      [['mlp.onnx', '--duration', 'soon'], /--duration must be a number/, 2],
      [['mlp.onnx', '--shape', 'nope=1x784', ...FAST], /'nope'.*no such input/, 2],
      [['mlp.onnx', '--accuracy', 'other.onnx=0.9'], /not one of the profiled models/, 2],
      [['mlp.onnx', '--bogus'], /Unknown option '--bogus'/, 2],
      [['missing.onnx', '--report', 'bad.html'], /missing\.onnx/, 1],
    ];
    for (const [args, pattern, code] of cases) {
      const r = frugal(...args);
      assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${args.join(' ')}: one line, got ${r.stderr}`);
      assert.match(lines[0]!, /^frugal: error: /);
      assert.match(lines[0]!, pattern);
    }
    assert.equal(existsSync(path.join(dir, 'bad.html')), false);
  });
});
