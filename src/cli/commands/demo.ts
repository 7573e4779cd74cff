import path from 'node:path';
import { DEMO_HEADER, demoRows, optimizeLine, runDemo } from '../../search/demo.js';
import { CANDIDATE_HEADER, candidateRows } from '../../search/optimize-report.js';
import { defineCommand } from '../command.js';
import { table } from '../../report/format.js';

export const demoCommand = defineCommand({
  name: 'demo',
  usage: 'frugal demo [--out DIR] [--quick] [--json]',
  positionals: [0, 0],
  options: {
    out: { type: 'string', arg: 'DIR', default: 'frugal-report', description: 'where to write the models and reports' },
    quick: { type: 'boolean', description: 'short form: fewer test examples, calibration examples and timing runs (CI uses it)' },
  },
  examples: ['frugal demo', 'frugal demo --quick --out /tmp/frugal-report', 'frugal demo --json > demo.json'],
  async run(ctx) {
    const outDir = path.resolve(ctx.values.out);
    // Progress per teacher and variant: ctx.progress's dimmed lines on a terminal; when stderr is a file
    // or a pipe (CI logs, `npm start 2>&1 | tee`), the same lines plainly, one per step, so a long run
    // is never silent. Never with --json.
    const plain = !ctx.json && process.stderr.isTTY !== true;
    const onProgress = plain ? (line: string): void => void process.stderr.write(`${line}\n`) : ctx.progress;
    const r = await runDemo({ outDir, quick: ctx.values.quick, onProgress });
    if (ctx.json) {
      const json = {
        outDir: r.outDir,
        quick: r.quick,
        seconds: r.seconds,
        teachers: r.teachers.map((t) => ({
          name: t.name,
          task: t.task,
          evaluatedExamples: t.evaluatedExamples,
          variants: t.variants.map((v) => ({
            mode: v.mode,
            file: v.file,
            accuracy: v.accuracy,
            accuracyDeltaPoints: v.accuracyDeltaPoints,
            sizeBytes: v.sizeBytes,
            latencyP50Ms: v.latencyP50Ms,
            latencyRatio: v.latencyRatio,
            joulesPerInference: v.joulesPerInference,
            energySource: v.energySource,
            pareto: v.pareto,
          })),
          optimize: { chosen: t.optimize.chosen, front: t.optimize.front.map((c) => c.pipeline), candidates: t.optimize.candidates.map((c) => ({ pipeline: c.pipeline, status: c.status, reason: c.reason, accuracyDeltaPoints: c.accuracyDeltaPoints, latencyRatio: c.latencyRatio, joulesPerInference: c.joulesPerInference, energySource: c.energySource })), searchSeconds: t.optimize.searchSeconds },
        })),
        reports: ['report.json', 'report.md', 'report.html'].map((f) => path.join(r.outDir, f)),
      };
      ctx.out(JSON.stringify(json, null, 2));
      return;
    }
    for (const t of r.teachers) {
      ctx.out(`${t.name}: ${t.task}; accuracy on ${t.evaluatedExamples} held-out examples, latency at batch 1`);
      ctx.out(table(DEMO_HEADER, demoRows(t)));
      ctx.out(`${t.name}: pruned, distilled, linear-attention and the optimize pick (validation accuracy)`);
      ctx.out(table(CANDIDATE_HEADER, candidateRows(t.optimize)));
      ctx.out(optimizeLine(t));
      ctx.out('');
    }
    const est = r.teachers.some((t) => t.variants.some((v) => v.energySource.includes('estimated')));
    if (est) ctx.out('Energy is ESTIMATED from CPU time × TDP: no energy counter is readable on this machine (see the report for details).');
    ctx.out(`Pareto: on the accuracy/energy front of each teacher's variants. Took ${r.seconds.toFixed(0)} s.`);
    ctx.out(`Report: ${path.join(r.outDir, 'report.html')} (also report.md, report.json, and the models)`);
  },
});
