/**
 * Reports from a fixed record: terminal and Markdown contents, a self-contained HTML report with
 * inline SVG charts, and an end-to-end check that headless Chromium renders those charts without
 * console errors (skipped with a message when /usr/bin/chromium is absent).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { newRecord, type ModelProfile, type ProfileRecord, rateEnergies, resolveCarbon, summarize } from '../../src/profiling/index.js';
import { htmlReport, markdownReport, terminalReport } from '../../src/report/index.js';

const CHROMIUM = '/usr/bin/chromium';

function model(name: string, scale: number, accuracy: number): ModelProfile {
  const lat = Array.from({ length: 50 }, (_, i) => scale * (1 + i / 100));
  const joules = 0.002 * scale * 50;
  return {
    name,
    path: name,
    inputs: [{ name: 'input', dtype: 'float32', shape: [1, 784] }],
    iterations: 50,
    inferences: 50,
    seconds: lat.reduce((a, b) => a + b, 0) / 1000,
    extendedForEnergy: false,
    latencyMs: summarize(lat),
    latencySamplesMs: lat,
    throughput: { runsPerSecond: 1000 / scale, inferencesPerSecond: 1000 / scale },
    cpu: { userSeconds: 0.05 * scale, systemSeconds: 0.01, utilization: 1 },
    peakRssBytes: 100 * 2 ** 20,
    energy: {
      joules,
      joulesPerInference: joules / 50,
      totalWh: joules / 3600,
      whPer1000Inferences: ((joules / 50) * 1000) / 3600,
      sources: ['estimated:cpu-time-tdp'],
      estimated: true,
      parts: [{ meter: 'estimate', source: 'estimated:cpu-time-tdp', joules, domains: [{ name: 'cpu', joules }] }],
    },
    carbon: { grams: (joules / 3.6e6) * 481, gramsPerInference: (joules / 3.6e6 / 50) * 481, source: 'estimated:cpu-time-tdp × Ember' },
    rating: null,
    accuracy,
    sources: { latency: 'measured:performance.now', throughput: 'measured', cpuTime: 'measured:getrusage', peakRss: 'measured:getrusage', energy: 'estimated:cpu-time-tdp', carbon: 'x' },
  };
}

function fixedRecord(): ProfileRecord {
  const models = [model('small.onnx', 1, 0.9), model('big.onnx', 2, 0.95)];
  rateEnergies(models.map((m) => m.energy.whPer1000Inferences)).forEach((r, i) => (models[i]!.rating = r));
  const rec = newRecord({ ep: 'cpu', threads: null, batch: 1, warmup: 10, iterations: 50, durationSeconds: null, seed: 0 }, resolveCarbon(), [
    { name: 'rapl', source: 'measured:rapl', device: 'cpu', available: false, reason: '/sys/class/powercap does not exist', fix: 'modprobe' },
    { name: 'estimate', source: 'estimated:cpu-time-tdp', device: 'cpu', available: true, detail: '3.5 W per CPU-second' },
  ], models);
  return rec;
}

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-report-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('text reports', () => {
  test('terminal: both models, ratios to the first, sources, grid intensity, meter reasons', () => {
    const t = terminalReport(fixedRecord());
    const lines = t.split('\n');
    const big = lines.find((l) => l.startsWith('big.onnx'))!;
    assert.match(big, /2×\s+2×$/, 'p50 and energy twice the first');
    assert.match(lines.find((l) => l.startsWith('small.onnx'))!, /5\/5\s+1×\s+1×$/);
    assert.match(big, /1\/5/);
    assert.match(t, /energy: estimated:cpu-time-tdp \(ESTIMATED/);
    assert.match(t, /carbon: 481 gCO2e\/kWh \(WORLD; Ember/);
    assert.match(t, /meter rapl: unavailable: \/sys\/class\/powercap does not exist; fix: modprobe/);
  });

  test('markdown: a table row per model and the provenance list', () => {
    const md = markdownReport(fixedRecord());
    assert.match(md, /^# Frugal profile/);
    assert.match(md, /\| model \| p50 ms \|/);
    assert.match(md, /\| small\.onnx \| 1\.25 \|/);
    assert.match(md, /\| big\.onnx \| 2\.49 \|/);
    assert.match(md, /- energy: estimated:cpu-time-tdp/);
    assert.match(md, /Record schema version 1/);
  });
});

describe('HTML report', () => {
  let html: string;
  before(async () => {
    html = await htmlReport(fixedRecord());
  });

  test('self-contained: inline SVG charts, no remote src/href, no external script or stylesheet', () => {
    assert.equal((html.match(/<svg[\s>]/g) ?? []).length, 3, 'latency, energy and accuracy charts');
    for (const id of ['latency', 'energy', 'accuracy']) assert.match(html, new RegExp(`id="chart-${id}"><svg`));
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?\s*https?:/i);
    assert.doesNotMatch(html, /<script[^>]*\ssrc=/i);
    assert.doesNotMatch(html, /<link[^>]*stylesheet/i);
    assert.match(html, /ESTIMATED/);
    assert.match(html, /<script type="application\/json" id="frugal-record">/);
  });

  test('headless Chromium renders the charts without console errors', (t) => {
    if (!existsSync(CHROMIUM)) return t.skip(`${CHROMIUM} not found (Debian: apt-get install -y chromium)`);
    // A probe first in <head> records errors (including failed resource loads) and console.error
    // calls; after load it measures each chart and writes what it saw into the DOM.
    const probe = `<script>window.__e=[];addEventListener('error',e=>__e.push(String(e.message||(e.target&&(e.target.src||e.target.href)))),true);
const ce=console.error;console.error=(...a)=>{__e.push(a.join(' '));ce(...a)};
addEventListener('load',()=>{const c=[...document.querySelectorAll('figure.chart')].map(f=>{const s=f.querySelector('svg');const r=s.getBoundingClientRect();
return {id:f.id,w:r.width,h:r.height,marks:s.querySelectorAll('path,rect,line,text').length}});
const p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify({errors:__e,charts:c});document.body.append(p)})</script>`;
    const file = path.join(dir, 'report.html');
    writeFileSync(file, html.replace('<head>', `<head>${probe}`));
    const r = spawnSync(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${path.join(dir, 'profile')}`, '--enable-logging=stderr', '--v=0', '--dump-dom', `file://${file}`],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 0, `chromium exit ${r.status}: ${r.stderr}`);
    const m = /<pre id="probe">(.*?)<\/pre>/s.exec(r.stdout);
    assert.ok(m, `no probe output in the DOM:\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    const seen = JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as { errors: string[]; charts: Array<{ id: string; w: number; h: number; marks: number }> };
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.charts.map((c) => c.id), ['chart-latency', 'chart-energy', 'chart-accuracy']);
    for (const c of seen.charts) assert.ok(c.w > 100 && c.h > 50 && c.marks > 5, `chart ${c.id} rendered: ${JSON.stringify(c)}`);
    const consoleLines = r.stderr.split('\n').filter((l) => /CONSOLE/.test(l));
    assert.deepEqual(consoleLines, [], 'no console messages');
  });
});
